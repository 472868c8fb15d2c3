"""What this machine offers a lab, measured rather than assumed.

`probe()` creates one uniquely named scratch namespace, tries each facility there (add a
netem qdisc to its lo, an ifb device, an nft numgen rule, an iptables NFQUEUE rule, a
VLAN on a scratch veth, ...), reads the MPTCP sysctls a fresh namespace gets, and finds
the tools on PATH with their versions. The scratch namespace is removed in every case.
Nothing outside it is touched.

`measure_delay_stage()` runs a short TCP transfer through the fallback delay stage
between two scratch namespaces and reports throughput, delay error and the stage's CPU
cost (used by `mptcplab doctor --measure` and the benchmark).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mptcplab.errors import KernelError
from mptcplab.kernel import netns

TOOLS: dict[str, list[str]] = {
    "ip": ["ip", "-V"],
    "tc": ["tc", "-V"],
    "nft": ["nft", "--version"],
    "iptables": ["iptables", "--version"],
    "ip6tables": ["ip6tables", "--version"],
    "tcpdump": ["tcpdump", "--version"],
    "mptcpize": ["mptcpize", "--version"],
    "iperf3": ["iperf3", "--version"],
    "curl": ["curl", "--version"],
    "tshark": ["tshark", "--version"],
}

# Endpoint flags by the kernel release that introduced them (uapi mptcp.h history).
ENDPOINT_FLAGS_SINCE = {
    "signal": (5, 6), "subflow": (5, 6), "backup": (5, 6),
    "implicit": (5, 14), "fullmesh": (5, 18), "laminar": (6, 18),
}

FEATURES = ("netem", "tbf", "htb", "fq", "fq_codel", "ingress", "u32", "mirred", "ifb",
            "veth", "bridge", "vlan", "nftables", "numgen", "nft_queue", "iptables",
            "ip6tables", "nfqueue", "mptcp")


@dataclass
class Probe:
    """The result: plain data, `to_dict()` for JSON."""

    kernel: str
    root: bool
    features: dict[str, bool] = field(default_factory=dict)
    why_missing: dict[str, str] = field(default_factory=dict)
    mptcp_sysctls: dict[str, str] = field(default_factory=dict)
    path_managers: list[str] = field(default_factory=list)
    schedulers: list[str] = field(default_factory=list)
    endpoint_flags: list[str] = field(default_factory=list)
    tools: dict[str, str | None] = field(default_factory=dict)
    duration_s: float = 0.0

    def feature_set(self) -> set[str]:
        """Names of the facilities that work (input for mptcplab.plan.shaping)."""
        return {k for k, v in self.features.items() if v}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kernel_version(release: str | None = None) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", release or platform.release())
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def tool_versions() -> dict[str, str | None]:
    """First line of each tool's version output, None when it is not on PATH."""
    out: dict[str, str | None] = {}
    for name, argv in TOOLS.items():
        if shutil.which(argv[0]) is None:
            out[name] = None
            continue
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=5)
            text = (res.stdout or res.stderr).strip().splitlines()
            out[name] = text[0].strip() if text else "present"
        except (OSError, subprocess.TimeoutExpired):
            out[name] = "present (no version)"
    return out


class _Scratch:
    """A scratch namespace and a runner that records why a try failed."""

    def __init__(self) -> None:
        self.name = f"mptcplab-probe-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.why: dict[str, str] = {}

    def __enter__(self) -> _Scratch:
        netns.create(self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        for pid in netns.pids_in(self.name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        netns.delete(self.name)

    def ok(self, feature: str, argv: list[str]) -> bool:
        if shutil.which(argv[0]) is None:
            self.why.setdefault(feature, f"{argv[0]} not installed")
            return False
        res = subprocess.run(netns.argv(self.name, argv), capture_output=True, text=True, timeout=10)
        if res.returncode != 0:
            lines = res.stderr.strip().splitlines() or ["failed"]
            errors = [ln for ln in lines if "rror" in ln or "No such" in ln]
            self.why.setdefault(feature, (errors or lines)[0].strip()[:200])
            return False
        return True


def _qdiscs(s: _Scratch, f: dict[str, bool]) -> None:
    for name, args in (("netem", ["netem", "delay", "1ms"]),
                       ("tbf", ["tbf", "rate", "1mbit", "burst", "10k", "limit", "10k"]),
                       ("htb", ["htb"]), ("fq", ["fq"]), ("fq_codel", ["fq_codel"])):
        f[name] = s.ok(name, ["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", *args])
        if f[name]:
            s.ok(name, ["tc", "qdisc", "del", "dev", "lo", "root"])
    f["ingress"] = s.ok("ingress", ["tc", "qdisc", "add", "dev", "lo", "handle", "ffff:", "ingress"])
    f["ifb"] = s.ok("ifb", ["ip", "link", "add", "ifbprobe", "type", "ifb"])
    target = "ifbprobe" if f["ifb"] else "lo"
    f["u32"] = f["mirred"] = False
    if f["ingress"]:
        f["mirred"] = f["u32"] = s.ok("mirred", [
            "tc", "filter", "add", "dev", "lo", "parent", "ffff:", "protocol", "all", "prio", "1",
            "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", target])
        if not f["u32"]:  # is it the classifier or the action that is missing?
            f["u32"] = s.ok("u32", ["tc", "filter", "add", "dev", "lo", "parent", "ffff:", "protocol",
                                    "all", "prio", "2", "u32", "match", "u32", "0", "0", "classid", "1:1"])


def _links(s: _Scratch, f: dict[str, bool]) -> None:
    f["veth"] = s.ok("veth", ["ip", "link", "add", "pv0", "type", "veth", "peer", "name", "pv1"])
    f["bridge"] = s.ok("bridge", ["ip", "link", "add", "pbr0", "type", "bridge"])
    f["vlan"] = f["veth"] and s.ok("vlan", ["ip", "link", "add", "link", "pv0", "name", "pv0.5",
                                            "type", "vlan", "id", "5"])
    if not f["veth"]:
        s.why.setdefault("vlan", "needs a veth to test on")


def _netfilter(s: _Scratch, f: dict[str, bool]) -> None:
    f["nftables"] = s.ok("nftables", ["nft", "add table inet probe; add chain inet probe c "
                                             "{ type filter hook postrouting priority 0; }"])
    f["numgen"] = f["nftables"] and s.ok("numgen", ["nft", "add rule inet probe c numgen random mod 100 < 1 drop"])
    f["nft_queue"] = f["nftables"] and s.ok("nft_queue", ["nft", "add rule inet probe c meta mark 12345 queue num 1 bypass"])
    f["iptables"] = s.ok("iptables", ["iptables", "-w", "-t", "mangle", "-L", "POSTROUTING", "-n"])
    f["ip6tables"] = s.ok("ip6tables", ["ip6tables", "-w", "-t", "mangle", "-L", "POSTROUTING", "-n"])
    f["nfqueue"] = f["iptables"] and s.ok("nfqueue", ["iptables", "-w", "-t", "mangle", "-A", "POSTROUTING",
                                                      "-o", "lo", "-j", "NFQUEUE", "--queue-num", "1",
                                                      "--queue-bypass"])
    if f["nfqueue"]:  # the target exists; can user space bind a queue (nfnetlink_queue)?
        from mptcplab.kernel import nfqueue

        try:
            with netns.enter(s.name):
                q = nfqueue.NfQueueSocket(rcvbuf=1 << 20, bufsize=1 << 16)
            try:
                q.bind(nfqueue.QueueConfig(1))
            finally:
                q.close()
        except (KernelError, OSError) as exc:
            f["nfqueue"] = False
            s.why["nfqueue"] = f"binding a queue failed: {exc}"


def _mptcp(s: _Scratch, p: Probe) -> None:
    values: dict[str, str] = {}
    with netns.enter(s.name):
        base = Path("/proc/sys/net/mptcp")
        if base.is_dir():
            for entry in sorted(base.iterdir()):
                try:
                    values[entry.name] = entry.read_text().strip()
                except OSError:
                    continue
    p.mptcp_sysctls = values
    p.features["mptcp"] = bool(values)
    if not values:
        s.why["mptcp"] = "no /proc/sys/net/mptcp (kernel built without CONFIG_MPTCP)"
        return
    if "available_path_managers" in values:
        p.path_managers = values["available_path_managers"].split()
    elif "pm_type" in values:
        p.path_managers = ["kernel", "userspace"]
    else:
        p.path_managers = ["kernel"]
    p.schedulers = values.get("available_schedulers", "default").split()
    ver = kernel_version(p.kernel)
    p.endpoint_flags = [flag for flag, since in ENDPOINT_FLAGS_SINCE.items() if ver >= since]


def probe() -> Probe:
    """Probe the kernel in a scratch namespace (needs root; without it only tools are listed)."""
    t0 = time.monotonic()
    p = Probe(kernel=platform.release(), root=os.geteuid() == 0)
    p.tools = tool_versions()
    if not p.root:
        p.features = dict.fromkeys(FEATURES, False)
        p.why_missing = dict.fromkeys(FEATURES, "not probed: needs root")
        return p
    with _Scratch() as s:
        f: dict[str, bool] = {}
        _qdiscs(s, f)
        _links(s, f)
        _netfilter(s, f)
        p.features = f
        _mptcp(s, p)
        p.why_missing = {k: v for k, v in s.why.items() if not p.features.get(k)}
    p.duration_s = round(time.monotonic() - t0, 3)
    return p


# ------------------------------------------------------------ measuring the stage
def icmp_rtts(ns: str, dst: str, count: int, interval: float) -> list[float]:
    """RTTs (s) of COUNT ICMP echoes from NS to DST sent INTERVAL apart (raw socket)."""
    with netns.enter(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.settimeout(0.05)
    ident = os.getpid() & 0xFFFF
    sent: dict[int, float] = {}
    rtts: dict[int, float] = {}
    done = threading.Event()

    def rx() -> None:
        while not done.is_set():
            try:
                data = sock.recv(2048)
            except (TimeoutError, OSError):
                continue
            now = time.monotonic()
            ihl = (data[0] & 0xF) * 4
            typ, _c, _k, pid, seq = struct.unpack_from("!BBHHH", data, ihl)
            if typ == 0 and pid == ident and seq in sent:
                rtts[seq] = now - sent[seq]

    t = threading.Thread(target=rx, daemon=True)
    t.start()
    for seq in range(1, count + 1):
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"mptcplab"
        csum = sum(struct.unpack("!8H", hdr))
        csum = (csum >> 16) + (csum & 0xFFFF)
        csum = ~(csum + (csum >> 16)) & 0xFFFF
        sent[seq] = time.monotonic()
        sock.sendto(hdr[:2] + struct.pack("!H", csum) + hdr[4:], (dst, 0))
        time.sleep(interval)
    deadline = time.monotonic() + 1.0
    while len(rtts) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    done.set()
    t.join(1)
    sock.close()
    return [rtts[s] for s in sorted(rtts)]


def run_in(ns: str, argv: list[str]) -> None:
    res = subprocess.run(netns.argv(ns, argv), capture_output=True, text=True)
    if res.returncode != 0:
        raise KernelError(f"{' '.join(argv)}: {res.stderr.strip()}")


def scratch_pair(prefix: str = "mptcplab-m") -> tuple[str, str]:
    """Two fresh namespaces joined by a veth pair: eth0 10.77.0.1 <-> eth0 10.77.0.2, with TCP
    buffers big enough for Gbit/s over tens of ms (set inside them only)."""
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    a, b = f"{prefix}a-{tag}", f"{prefix}b-{tag}"
    netns.create(a)
    netns.create(b)
    try:
        run_in(a, ["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b])
        for ns, addr in ((a, "10.77.0.1"), (b, "10.77.0.2")):
            run_in(ns, ["ip", "addr", "add", f"{addr}/24", "dev", "eth0"])
            run_in(ns, ["ip", "link", "set", "eth0", "up"])
            run_in(ns, ["ip", "link", "set", "lo", "up"])
            run_in(ns, ["sysctl", "-qw", "net.ipv4.tcp_rmem=4096 131072 134217728",
                      "net.ipv4.tcp_wmem=4096 65536 134217728"])
    except BaseException:
        remove_scratch(a, b)
        raise
    return a, b


def remove_scratch(*names: str) -> None:
    """Kill what runs in the namespaces and remove them."""
    for name in names:
        for pid in netns.pids_in(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        netns.delete(name)


def iperf3_goodput(a: str, b: str, dst: str, seconds: float) -> float:
    """TCP goodput a->b in bit/s as the iperf3 receiver counted it."""
    port = "5301"
    server = subprocess.Popen(netns.argv(b, ["iperf3", "-s", "-1", "-p", port]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.2)
        res = subprocess.run(netns.argv(a, ["iperf3", "-c", dst, "-p", port, "-t", str(seconds), "-J"]),
                             capture_output=True, text=True, timeout=seconds + 20)
        doc = json.loads(res.stdout)
        if "error" in doc:
            raise KernelError(f"iperf3: {doc['error']}")
        return float(doc["end"]["sum_received"]["bits_per_second"])
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()


def measure_delay_stage(delay_s: float = 0.01, seconds: float = 3.0,
                        stage_args: tuple[str, ...] = ()) -> dict[str, Any]:
    """Throughput and delay error of the fallback delay stage, between scratch namespaces.

    Direction a->b is delayed by DELAY_S at b's ingress (what plan_link does). Reports
    goodput (iperf3), median RTT error idle and under load (ICMP, 20 echoes each), and the
    stage's CPU use as a share of one core.
    """
    from mptcplab.plan.shaping import Impairment, plan_link, stage_config

    if shutil.which("iperf3") is None:
        raise KernelError("measuring the delay stage needs iperf3")
    a, b = scratch_pair()
    tmp = Path(tempfile.mkdtemp(prefix="mptcplab-stage-"))
    stage = None
    try:
        base = statistics.median(icmp_rtts(a, "10.77.0.2", 10, 0.005))
        p = plan_link("eth0", "eth0", Impairment(delay_s=delay_s), "fallback", queue_num=1)
        cfg, stats = tmp / "stage.json", tmp / "stats.json"
        cfg.write_text(json.dumps(stage_config(p.stage_queues, str(stats), 0.2)))
        stage = subprocess.Popen(netns.argv(b, [sys.executable, "-m", "mptcplab.lab.delaystage",
                                                "--config", str(cfg), *stage_args]))
        deadline = time.monotonic() + 5
        while not stats.exists():
            if stage.poll() is not None or time.monotonic() > deadline:
                raise KernelError("the delay stage did not start")
            time.sleep(0.02)
        for c in p.commands:
            run_in(a if c.side == "local" else b, list(c.argv))
        idle = icmp_rtts(a, "10.77.0.2", 20, 0.01)
        cpu0 = json.loads(stats.read_text())["cpu_s"]
        w0 = time.monotonic()
        loaded: list[float] = []
        pinger = threading.Thread(target=lambda: loaded.extend(
            icmp_rtts(a, "10.77.0.2", 20, seconds / 25)), daemon=True)
        pinger.start()
        goodput = iperf3_goodput(a, b, "10.77.0.2", seconds)
        pinger.join(seconds + 3)
        stage.send_signal(signal.SIGUSR1)
        time.sleep(0.1)
        doc = json.loads(stats.read_text())
        wall = time.monotonic() - w0
        q = doc["queues"][0]
        return {
            "delay_ms": delay_s * 1e3,
            "goodput_gbps": round(goodput / 1e9, 3),
            "median_delay_error_idle_ms": round((statistics.median(idle) - base - delay_s) * 1e3, 3),
            "median_delay_error_loaded_ms": round((statistics.median(loaded) - base - delay_s) * 1e3, 3)
            if loaded else None,
            "stage_cpu_share": round((doc["cpu_s"] - cpu0) / wall, 3),
            "release_late_us": doc["release_late_us"],
            "packets": q["packets"], "max_held": q["max_held"], "bypassed": q["id_gaps"],
        }
    finally:
        if stage is not None and stage.poll() is None:
            stage.terminate()
            try:
                stage.wait(3)
            except subprocess.TimeoutExpired:
                stage.kill()
        remove_scratch(a, b)
        shutil.rmtree(tmp, ignore_errors=True)
