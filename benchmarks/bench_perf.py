"""mptcplab perf vs `mptcpize run iperf3` on one unshaped veth pair, and what sampling costs.

Run as root:  python3 benchmarks/bench_perf.py [--seconds 5] [--rounds 3] [--cc cubic]

Two fresh namespaces joined by one veth pair; each round runs, one after the other:
iperf3 under mptcpize (its own server process), then mptcplab perf (server as a child
process like iperf3's, client in this process) with sampling at 10/s, without sampling,
and without the receiver's CRC, then plain-TCP iperf3 as a reference. Prints medians, the ratio to iperf3, and CPU seconds
(client process; sampler thread; server process). Not a pass/fail test: a table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from mptcplab.kernel import netns  # noqa: E402
from mptcplab.workloads.perf import run_client  # noqa: E402
from mptcplab.workloads.perf.lab import ServerProcess  # noqa: E402


def sh(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True)


def setup() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:6]
    a, b = f"bench{tag}-a", f"bench{tag}-b"
    netns.create(a)
    netns.create(b)
    sh("ip", "link", "add", "va", "netns", a, "type", "veth", "peer", "name", "vb", "netns", b)
    for ns, dev, addr in ((a, "va", "10.77.0.1/24"), (b, "vb", "10.77.0.2/24")):
        sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_no_metrics_save=1")
    return a, b


def teardown(names: tuple[str, str]) -> None:
    for name in names:
        for pid in netns.pids_in(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        netns.delete(name)


def iperf3(a: str, b: str, seconds: float, cc: str | None, mptcp: bool = True) -> dict:
    wrap = ["mptcpize", "run"] if mptcp else []
    srv = subprocess.Popen(netns.argv(b, [*wrap, "iperf3", "-s", "-1", "-p", "5301"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    cmd = [*wrap, "iperf3", "-c", "10.77.0.2", "-p", "5301", "-t", str(seconds), "-J"]
    if cc:
        cmd += ["-C", cc]
    out = subprocess.run(netns.argv(a, cmd), capture_output=True, text=True, timeout=seconds + 30)
    srv.wait(timeout=10)
    data = json.loads(out.stdout)
    end = data["end"]
    return {"gbps": end["sum_received"]["bits_per_second"] / 1e9,
            "cpu_client": end["cpu_utilization_percent"]["host_total"] * seconds / 100,
            "cpu_server": end["cpu_utilization_percent"]["remote_total"] * seconds / 100}


def perf(a: str, b: str, seconds: float, cc: str | None, sample_interval: float, verify: bool) -> dict:
    srv = ServerProcess(b, port=5302)
    srv.start()
    before = resource.getrusage(resource.RUSAGE_SELF)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        r = run_client("10.77.0.2", 5302, duration=seconds, netns=a, congestion=cc,
                       sample_interval=sample_interval, verify=verify)
    finally:
        srv.stop()
    after = resource.getrusage(resource.RUSAGE_SELF)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert r.ok, r.problems
    sampling = r.data["meta"]["sampling"]
    return {
        "gbps": r.bits_per_second("c2s") / 1e9,
        "cpu_client": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "cpu_server": (children_after.ru_utime + children_after.ru_stime)
        - (children_before.ru_utime + children_before.ru_stime),
        "sampler_cpu": sampling["client_cpu_seconds"], "samples": sampling["client_samples"],
        "subflow_samples": sum(len(sf["series"]["t"]) for sf in r.subflows()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cc", default="cubic", help="congestion control for both tools ('' = system default)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (creates network namespaces)")
    cc = args.cc or None
    configs = {
        "iperf3 (mptcpize)": lambda a, b: iperf3(a, b, args.seconds, cc),
        "perf, sampling 10/s, CRC": lambda a, b: perf(a, b, args.seconds, cc, 0.1, True),
        "perf, no sampling, CRC": lambda a, b: perf(a, b, args.seconds, cc, 0.0, True),
        "perf, sampling 10/s, no CRC": lambda a, b: perf(a, b, args.seconds, cc, 0.1, False),
        "iperf3 plain TCP (reference)": lambda a, b: iperf3(a, b, args.seconds, cc, mptcp=False),
    }
    runs: dict[str, list[dict]] = {k: [] for k in configs}
    names = setup()
    try:
        for rnd in range(args.rounds):
            for name, fn in configs.items():
                res = fn(*names)
                runs[name].append(res)
                print(f"round {rnd + 1} {name:30s} {res['gbps']:6.2f} Gbit/s", file=sys.stderr)
    finally:
        teardown(names)
    base = statistics.median(r["gbps"] for r in runs["iperf3 (mptcpize)"])
    print(f"\n{args.rounds} rounds x {args.seconds:g} s, one veth pair, congestion control {cc or 'system default'}, "
          f"{os.cpu_count()} CPUs, kernel {os.uname().release}")
    print(f"{'configuration':30s} {'median Gbit/s':>13s} {'min-max':>13s} {'vs iperf3':>9s} "
          f"{'CPU s client':>12s} {'CPU s server':>12s} {'sampler CPU s':>13s}")
    for name, rs in runs.items():
        g = [r["gbps"] for r in rs]
        med = statistics.median(g)
        sampler = statistics.median(r.get("sampler_cpu", 0.0) for r in rs)
        print(f"{name:30s} {med:13.2f} {min(g):6.2f}-{max(g):<6.2f} {med / base:9.0%} "
              f"{statistics.median(r['cpu_client'] for r in rs):12.2f} "
              f"{statistics.median(r['cpu_server'] for r in rs):12.2f} "
              f"{sampler:13.4f}")


if __name__ == "__main__":
    main()
