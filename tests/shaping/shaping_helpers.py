"""Helpers for the link-emulation root tests: a veth pair, commands, probes, the stage."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from mptcplab.kernel import netns
from mptcplab.lab.delaystage import stage_argv
from mptcplab.plan.shaping import Command

A_ADDR = "10.9.0.1"
B_ADDR = "10.9.0.2"


def sh(ns: str, argv: Iterable[str]) -> str:
    res = subprocess.run(netns.argv(ns, list(argv)), capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {ns}: {res.stderr.strip()}")
    return res.stdout


def veth_pair(a: str, b: str) -> None:
    """eth0 in A (10.9.0.1/24) <-> eth0 in B (10.9.0.2/24), big TCP buffers in both."""
    sh(a, ["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b])
    for ns, addr in ((a, A_ADDR), (b, B_ADDR)):
        sh(ns, ["ip", "addr", "add", f"{addr}/24", "dev", "eth0"])
        sh(ns, ["ip", "link", "set", "eth0", "up"])
        sh(ns, ["ip", "link", "set", "lo", "up"])
        sh(ns, ["sysctl", "-qw", "net.ipv4.tcp_rmem=4096 131072 67108864",
                "net.ipv4.tcp_wmem=4096 65536 67108864", "net.mptcp.enabled=1"])


def run(commands: Iterable[Command], local: str, peer: str | None = None) -> None:
    for c in commands:
        sh(local if c.side == "local" else (peer or local), c.argv)


def link_stats(ns: str, ifname: str = "eth0") -> dict[str, dict[str, int]]:
    return json.loads(sh(ns, ["ip", "-j", "-s", "link", "show", ifname]))[0]["stats64"]


class Stage:
    """The delay stage process in NS, with its config file under TMP."""

    def __init__(self, ns: str, tmp: Path, queues: list[dict]) -> None:
        self.config = tmp / f"stage-{ns}.json"
        self.stats_path = tmp / f"stage-{ns}.stats.json"
        self.write(queues)
        self.proc = subprocess.Popen(
            netns.argv(ns, stage_argv(str(self.config))),
            stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 5
        while not self.stats_path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"delay stage did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
            time.sleep(0.02)

    def write(self, queues: list[dict], interval: float = 0.2) -> None:
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(json.dumps({"queues": queues, "stats_path": str(self.stats_path),
                                   "stats_interval_s": interval}))
        os.replace(tmp, self.config)

    def reconfigure(self, queues: list[dict]) -> None:
        self.write(queues)
        self.proc.send_signal(signal.SIGHUP)

    def stats(self) -> dict:
        """Fresh stats: SIGUSR1 makes the stage write them now."""
        before = json.loads(self.stats_path.read_text())["uptime_s"]
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                doc = json.loads(self.stats_path.read_text())
            except ValueError:
                continue
            if doc["uptime_s"] != before:
                return doc
            time.sleep(0.01)
        raise RuntimeError("delay stage wrote no stats")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


class Pinger:
    """ICMP echo from namespace NS (raw socket): sends every INTERVAL, records RTTs by seq."""

    def __init__(self, ns: str, dst: str) -> None:
        with netns.enter(ns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.dst = dst
        self.ident = os.getpid() & 0xFFFF
        self.sent: dict[int, float] = {}
        self.rtt: dict[int, float] = {}
        self.seq = 0
        self._stop = False
        self._rx = threading.Thread(target=self._receive, daemon=True)
        self._rx.start()

    def _receive(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                data = self.sock.recv(2048)
            except (TimeoutError, OSError):
                continue
            now = time.monotonic()
            ihl = (data[0] & 0xF) * 4
            typ, _code, _ck, ident, seq = struct.unpack_from("!BBHHH", data, ihl)
            if typ == 0 and ident == self.ident and seq in self.sent:
                self.rtt[seq] = now - self.sent[seq]

    def send(self) -> tuple[int, float]:
        self.seq = (self.seq + 1) & 0xFFFF
        payload = b"mptcplab" * 4
        hdr = struct.pack("!BBHHH", 8, 0, 0, self.ident, self.seq)
        ck = _csum(hdr + payload)
        pkt = struct.pack("!BBHHH", 8, 0, ck, self.ident, self.seq) + payload
        t = time.monotonic()
        self.sent[self.seq] = t
        # EPERM: dropped by a loss rule on the local output path, so lost, no reply
        with contextlib.suppress(PermissionError):
            self.sock.sendto(pkt, (self.dst, 0))
        return self.seq, t

    def series(self, count: int, interval: float, settle: float = 0.3) -> list[float]:
        """RTTs (s) of COUNT echoes sent INTERVAL apart; lost ones are left out."""
        seqs = []
        for _ in range(count):
            seqs.append(self.send()[0])
            time.sleep(interval)
        deadline = time.monotonic() + settle + 2
        while time.monotonic() < deadline and not all(s in self.rtt for s in seqs):
            time.sleep(0.01)
        return [self.rtt[s] for s in seqs if s in self.rtt]

    def close(self) -> None:
        self._stop = True
        self._rx.join(1)
        self.sock.close()


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3
