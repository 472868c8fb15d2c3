"""Benchmark `mptcplab analyze` against tshark's MPTCP analysis on one synthetic pcap.

    python3 benchmarks/bench_analyze.py [--packets 220000] [--live 32] [--keep PATH]

Writes a pcap (dpkt writer) of MPTCP connections, each with an MP_CAPABLE handshake,
one MP_JOIN subflow, data packets with DSS mappings spread over both subflows (some
data reinjected), data acks, and FIN; ``--live`` connections run interleaved at any
time. Frames are cut at 128 bytes like `tcpdump -s 128`. Then it runs, each in its own
process, our analysis and `tshark -T fields` with the two MPTCP analysis options, and
prints packets per second and peak memory (max RSS) of each, and their ratio. A second
run of ours on a capture twice as long shows whether memory follows capture length.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time

import dpkt

SNAP = 128
MSS = 1424


def _csum_free_ip(src: bytes, dst: bytes, l4: bytes, payload_len: int) -> bytes:
    total = 20 + len(l4) + payload_len
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, src, dst) + l4


def _tcp(sport: int, dport: int, seq: int, ack: int, flags: int, opts: bytes) -> bytes:
    if len(opts) % 4:
        opts += b"\x01" * (4 - len(opts) % 4)
    off = (20 + len(opts)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                       off << 4, flags, 65535, 0, 0) + opts


TS = b"\x01\x01\x08\x0a" + b"\x00\x00\x00\x01\x00\x00\x00\x01"
ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
SYN, ACK, FIN, PSH = 0x02, 0x10, 0x01, 0x08


class Session:
    """One synthetic MPTCP connection with two subflows; yields frames one by one."""

    def __init__(self, n: int, data_packets: int) -> None:
        self.n = n
        self.c = bytes([10, 1, (n >> 8) & 255, n & 255])
        self.c2 = bytes([10, 3, (n >> 8) & 255, n & 255])
        self.s = bytes([10, 2, 0, 1])
        self.port = 10000 + n % 50000
        self.data_packets = data_packets
        self.ck = (0x1122334455667788 * (n + 1)) & (2**64 - 1)
        self.sk = (0x99AABBCCDDEEFF00 ^ (n * 7919)) & (2**64 - 1)

    def frames(self):
        c, c2, s, p = self.c, self.c2, self.s, self.port
        mpc = lambda *keys: b"\x1e" + bytes([4 + 8 * len(keys)]) + b"\x01\x81" + b"".join(  # noqa: E731
            k.to_bytes(8, "big") for k in keys)
        from mptcplab.analysis.options import key_idsn, key_token
        idsn = key_idsn(self.ck)
        token = key_token(self.sk)
        flows = [(c, s, p, 5001), (c2, s, p + 1, 5001)]
        yield flows[0], 0, 0, SYN, mpc(), 0
        yield flows[0], 1, 1, SYN | ACK, mpc(self.sk), 0
        yield flows[0], 0, 1, ACK, mpc(self.ck, self.sk), 0
        join_syn = b"\x1e\x0c\x10\x01" + token.to_bytes(4, "big") + b"\x00\x00\x00\x07"
        yield flows[1], 0, 0, SYN, join_syn, 0
        yield flows[1], 1, 1, SYN | ACK, b"\x1e\x10\x10\x00" + b"\x00" * 12, 0
        yield flows[1], 0, 1, ACK, b"\x1e\x18\x10\x00" + b"\x00" * 20, 0
        ssn = [1, 1]
        dsn = idsn + 1
        for i in range(self.data_packets):
            sf = i % 2
            if i % 97 == 96:  # reinject the previous packet's data on the other subflow
                d = dsn - MSS
            else:
                d = dsn
                dsn += MSS
            dss = (b"\x1e\x16\x20\x0d" + (1).to_bytes(4, "big") + (d & (2**64 - 1)).to_bytes(8, "big")
                   + ssn[sf].to_bytes(4, "big") + MSS.to_bytes(2, "big"))
            yield flows[sf], 0, ssn[sf], ACK | PSH, TS + dss, MSS
            ssn[sf] += MSS
            ack = b"\x1e\x08\x20\x01" + ((dsn) & 0xFFFFFFFF).to_bytes(4, "big")
            yield flows[sf], 1, ssn[sf], ACK, TS + ack, 0
        for sf in (0, 1):
            yield flows[sf], 0, ssn[sf], ACK | FIN, TS, 0
            yield flows[sf], 1, 1, ACK | FIN, TS, 0


def generate(path: str, packets: int, live: int, per_conn: int = 400) -> int:
    """Write a capture of about PACKETS frames; returns the exact count."""
    written = 0
    ts = 1_700_000_000.0
    n = 0
    active = []
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, snaplen=SNAP, linktype=1)
        while written < packets:
            while len(active) < live:
                active.append(Session(n, per_conn).frames())
                n += 1
            for gen in list(active):
                fr = next(gen, None)
                if fr is None:
                    active.remove(gen)
                    continue
                (a, b, sp, dp), direction, seq, flags, opts, plen = fr
                if direction:
                    a, b, sp, dp = b, a, dp, sp
                tcp = _tcp(sp, dp, seq, 1, flags, opts)
                frame = ETH + _csum_free_ip(a, b, tcp, plen) + b"\x00" * plen
                w.writepkt(frame[:SNAP], ts=ts)
                ts += 1e-5
                written += 1
    return written


def _measure(argv: list[str]) -> tuple[float, int, str]:
    """Run ARGV, return (wall seconds, peak RSS in KiB, stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = b""
    while True:
        chunk = proc.stdout.read(1 << 20)
        if not chunk:
            break
        out = chunk[-4096:]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{argv[0]} failed with exit code {proc.returncode}")
    return time.perf_counter() - t0, usage.ru_maxrss, out.decode(errors="replace")


OURS = ("import sys, time; from mptcplab.analysis import analyze; t = time.perf_counter(); "
        "r = analyze([sys.argv[1]]); dt = time.perf_counter() - t; "
        "print(r.packets, dt, len(r.connections), "
        "sum(c.reinjected_packets[0] for c in r.connections))")


def run_ours(path: str, repeat: int) -> dict:
    """Best of REPEAT runs, each in a fresh interpreter (the machine is shared)."""
    best: dict = {}
    for _ in range(repeat):
        wall, rss, out = _measure([sys.executable, "-c", OURS, path])
        pkts, dt, conns, reinj = out.split()
        if not best or float(dt) < best["seconds"]:
            best = {"packets": int(pkts), "seconds": float(dt), "wall": wall, "rss_kib": rss,
                    "connections": int(conns), "reinjections": int(reinj)}
    return best


def run_tshark(path: str, packets: int, repeat: int) -> dict:
    runs = [_run_tshark(path, packets) for _ in range(repeat)]
    return min(runs, key=lambda r: r["seconds"])


def _run_tshark(path: str, packets: int) -> dict:
    argv = ["tshark", "-n", "-r", path, "-o", "mptcp.analyze_mappings:TRUE",
            "-o", "mptcp.intersubflows_retransmission:TRUE", "-T", "fields",
            "-e", "frame.number", "-e", "tcp.stream", "-e", "mptcp.stream",
            "-e", "tcp.options.mptcp.subtype", "-e", "mptcp.dsn", "-e", "mptcp.reinjection_of"]
    wall, rss, _ = _measure(argv)
    return {"packets": packets, "seconds": wall, "wall": wall, "rss_kib": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=220_000)
    ap.add_argument("--live", type=int, default=32, help="connections interleaved at any time")
    ap.add_argument("--keep", default=None, help="write the pcap here and keep it")
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs of each tool")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-analyze-")
    path = args.keep or os.path.join(tmp, "bench.pcap")
    n = generate(path, args.packets, args.live)
    path2 = os.path.join(tmp, "bench2.pcap")
    n2 = generate(path2, args.packets * 2, args.live)
    print(f"capture: {n} packets, {os.path.getsize(path) / 1e6:.1f} MB, {args.live} live connections")
    rows = []
    ours = run_ours(path, args.repeat)
    rows.append(("mptcplab analyze", n, ours["seconds"], ours["rss_kib"]))
    ours2 = run_ours(path2, args.repeat)
    rows.append(("mptcplab analyze (2x capture)", n2, ours2["seconds"], ours2["rss_kib"]))
    if not args.no_tshark:
        ts = run_tshark(path, n, args.repeat)
        rows.append(("tshark -T fields (MPTCP analysis on)", n, ts["seconds"], ts["rss_kib"]))
    print(f"best of {args.repeat} runs; ours: time inside analyze(), tshark: process wall time")
    print(f"{'tool':40} {'packets':>9} {'seconds':>8} {'pkt/s':>9} {'peak RSS MiB':>13}")
    for name, pk, sec, rss in rows:
        print(f"{name:40} {pk:>9} {sec:>8.2f} {pk / sec:>9.0f} {rss / 1024:>13.1f}")
    print(f"connections found: {ours['connections']}, reinjected packets: {ours['reinjections']}")
    if not args.no_tshark:
        ratio = (n / ours["seconds"]) / (n / ts["seconds"])
        print(f"speed ratio (ours / tshark): {ratio:.1f}x; memory ratio (tshark / ours): "
              f"{ts['rss_kib'] / ours['rss_kib']:.1f}x")
    for p in (path2,) + (() if args.keep else (path,)):
        os.unlink(p)
    os.rmdir(tmp) if not os.listdir(tmp) else None


if __name__ == "__main__":
    main()
