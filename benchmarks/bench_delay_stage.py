"""Benchmark: TCP through the fallback delay stage vs VDE's wirefilter, 10 ms one way.

Run as root:  python benchmarks/bench_delay_stage.py [--seconds 3] [--repeat 3]

Every path is built from scratch namespaces (removed afterwards) joined by a veth pair
(our stage, plain veth) or by tap devices plugged into two vde_switch instances with a
wirefilter between them (Debian package vde2). Direction a->b is delayed by 10 ms; the
reverse is not. Prints one table: iperf3 goodput a->b, median delay error from 20 ICMP
echoes idle and during the transfer, and the emulator's CPU use (share of one core).
TCP buffers are raised inside the scratch namespaces only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mptcplab.kernel import netns
from mptcplab.kernel.probe import (
    icmp_rtts,
    iperf3_goodput,
    measure_delay_stage,
    remove_scratch,
    run_in,
    scratch_pair,
)

DELAY_S = 0.01


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _loaded(a: str, b: str, dst: str, seconds: float) -> tuple[float, list[float]]:
    """Goodput and echo RTTs measured during the transfer."""
    rtts: list[float] = []
    t = threading.Thread(target=lambda: rtts.extend(icmp_rtts(a, dst, 20, seconds / 25)), daemon=True)
    t.start()
    goodput = iperf3_goodput(a, b, dst, seconds)
    t.join(seconds + 3)
    return goodput, rtts


def bench_plain(seconds: float) -> dict:
    a, b = scratch_pair("mptcplab-bp")
    try:
        idle = icmp_rtts(a, "10.77.0.2", 20, 0.005)
        goodput, loaded = _loaded(a, b, "10.77.0.2", seconds)
        return {"name": "plain veth, no delay", "goodput_gbps": goodput / 1e9,
                "err_idle_ms": statistics.median(idle) * 1e3, "err_loaded_ms": statistics.median(loaded) * 1e3,
                "cpu": None}
    finally:
        remove_scratch(a, b)


def bench_stage(seconds: float, rt: bool) -> dict:
    r = measure_delay_stage(DELAY_S, seconds, ("--rt", "10") if rt else ())
    return {"name": f"mptcplab delay stage{' (SCHED_FIFO)' if rt else ''}",
            "goodput_gbps": r["goodput_gbps"], "err_idle_ms": r["median_delay_error_idle_ms"],
            "err_loaded_ms": r["median_delay_error_loaded_ms"], "cpu": r["stage_cpu_share"],
            "late_p99_us": r["release_late_us"]["p99"]}


def bench_vde(seconds: float) -> dict:
    """tapa (ns a) - vde_switch s1 - wirefilter -d 10 (one way) - vde_switch s2 - tapb (ns b)."""
    tag = f"{os.getpid()}-{time.monotonic_ns() % 100000}"
    a, b = f"mptcplab-va-{tag}", f"mptcplab-vb-{tag}"
    tmp = Path(tempfile.mkdtemp(prefix="mptcplab-vde-"))
    procs: list[subprocess.Popen] = []

    def start(ns: str, argv: list[str]) -> subprocess.Popen:
        p = subprocess.Popen(netns.argv(ns, argv), stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        return p

    netns.create(a)
    netns.create(b)
    try:
        s1, s2 = str(tmp / "s1"), str(tmp / "s2")
        start(a, ["vde_switch", "-s", s1])
        start(b, ["vde_switch", "-s", s2])
        time.sleep(0.5)
        # wirefilter's "LR" prefix limits an impairment to the left-to-right direction (s1 -> s2)
        wf = start(a, ["wirefilter", "-v", f"{s1}:{s2}", "-d", f"LR{int(DELAY_S * 1e3)}"])
        start(a, ["vde_plug2tap", "-s", s1, "tapa"])
        start(b, ["vde_plug2tap", "-s", s2, "tapb"])
        time.sleep(0.5)
        for ns, dev, addr in ((a, "tapa", "10.78.0.1"), (b, "tapb", "10.78.0.2")):
            run_in(ns, ["ip", "addr", "add", f"{addr}/24", "dev", dev])
            run_in(ns, ["ip", "link", "set", dev, "up"])
            run_in(ns, ["ip", "link", "set", "lo", "up"])
            run_in(ns, ["sysctl", "-qw", "net.ipv4.tcp_rmem=4096 131072 134217728",
                      "net.ipv4.tcp_wmem=4096 65536 134217728"])
        time.sleep(0.3)
        icmp_rtts(a, "10.78.0.2", 3, 0.05)  # ARP, switch learning
        idle = icmp_rtts(a, "10.78.0.2", 20, 0.005)
        cpu0, w0 = _cpu_s(wf.pid), time.monotonic()
        goodput, loaded = _loaded(a, b, "10.78.0.2", seconds)
        cpu = (_cpu_s(wf.pid) - cpu0) / (time.monotonic() - w0)
        return {"name": "VDE wirefilter", "goodput_gbps": goodput / 1e9,
                "err_idle_ms": statistics.median(idle) * 1e3 - DELAY_S * 1e3,
                "err_loaded_ms": statistics.median(loaded) * 1e3 - DELAY_S * 1e3 if loaded else None,
                "cpu": cpu}
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        remove_scratch(a, b)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (creates network namespaces)", file=sys.stderr)
        return 2
    rows: list[dict] = []
    runs = [("plain", lambda: bench_plain(args.seconds))]
    runs += [("stage-rt", lambda: bench_stage(args.seconds, True))] * args.repeat
    runs += [("stage", lambda: bench_stage(args.seconds, False))] * args.repeat
    if shutil.which("wirefilter"):
        runs += [("vde", lambda: bench_vde(args.seconds))] * args.repeat
    else:
        print("vde2 not installed: skipping wirefilter (apt-get install vde2)", file=sys.stderr)
    for _, fn in runs:
        rows.append(fn())
    print(f"{'path (10 ms one way; plain: none)':40} {'goodput Gbit/s':>15} {'delay err idle ms':>18} "
          f"{'delay err loaded ms':>20} {'CPU (1 core)':>13} {'late p99 us':>12}")
    for r in rows:
        cpu = f"{r['cpu'] * 100:.0f} %" if r["cpu"] is not None else "-"
        loaded = f"{r['err_loaded_ms']:.3f}" if r["err_loaded_ms"] is not None else "-"
        late = f"{r['late_p99_us']:.0f}" if r.get("late_p99_us") is not None else "-"
        print(f"{r['name']:40} {r['goodput_gbps']:15.3f} {r['err_idle_ms']:18.3f} {loaded:>20} {cpu:>13} {late:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
