"""Two namespaces joined by two veth pairs, MPTCP endpoints set inside them, captures.

Used by the root tests and by tests/data/pcaps/generate.py. Client namespace C has
e0 10.0.1.1 / dead:1::1 and e1 10.0.2.1 / dead:2::1; server namespace S has the
.2 / ::2 ends. Nothing here touches the root namespace.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable

from mptcplab.kernel import netns


def ip(ns: str, *args: str) -> str:
    """Run `ip ARGS` inside namespace NS; raise with stderr on failure."""
    proc = subprocess.run(netns.argv(ns, ["ip", *args]), capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"ip {' '.join(args)} in {ns}: {proc.stderr.strip()}")
    return proc.stdout


def run(ns: str, *argv: str) -> str:
    proc = subprocess.run(netns.argv(ns, list(argv)), capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} in {ns}: {proc.stderr.strip()}")
    return proc.stdout


def build(c: str, s: str) -> None:
    """Two veth pairs between C and S, v4 and v6 addresses, loopback up, MPTCP on."""
    for i in (0, 1):
        ip(c, "link", "add", f"e{i}", "type", "veth", "peer", "name", f"e{i}", "netns", s)
    for ns, host in ((c, 1), (s, 2)):
        run(ns, "sysctl", "-qw", "net.mptcp.enabled=1")
        ip(ns, "link", "set", "lo", "up")
        for i in (0, 1):
            ip(ns, "addr", "add", f"10.0.{i + 1}.{host}/24", "dev", f"e{i}")
            ip(ns, "addr", "add", f"dead:{i + 1}::{host}/64", "dev", f"e{i}", "nodad")
            ip(ns, "link", "set", f"e{i}", "up")


def limits(ns: str, subflows: int = 4, accepted: int = 4) -> None:
    ip(ns, "mptcp", "limits", "set", "subflows", str(subflows), "add_addr_accepted", str(accepted))


class Capture:
    """tcpdump on each of IFACES in NS, one pcap per interface (snaplen keeps files small)."""

    def __init__(self, ns: str, ifaces: list[str], outdir: str, prefix: str,
                 snaplen: int = 128) -> None:
        self.procs: list[subprocess.Popen] = []
        self.files: list[str] = []
        for iface in ifaces:
            name = "any" if iface == "any" else iface
            path = os.path.join(outdir, f"{prefix}-{name}.pcap")
            proc = subprocess.Popen(
                netns.argv(ns, ["tcpdump", "-i", iface, "-s", str(snaplen), "-U", "-n", "--immediate-mode",
                                "-w", path, "tcp"]),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            self.procs.append(proc)
            self.files.append(path)
        for proc in self.procs:  # wait for "listening on"
            for _ in range(4):
                line = proc.stderr.readline()
                if "listening" in line or not line:
                    break
            if "listening" not in line:
                self.stop()
                raise RuntimeError(f"tcpdump failed: {line}")

    def stop(self) -> list[str]:
        time.sleep(0.3)
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        return self.files


def in_ns(ns: str, fn: Callable, *args) -> threading.Thread:
    """Run fn(*args) in a thread that lives inside namespace NS."""

    def body() -> None:
        with netns.enter(ns):
            fn(*args)

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t


def listener(ns: str, addr: str, port: int, mptcp: bool = True) -> socket.socket:
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with netns.enter(ns):
        srv = socket.socket(fam, socket.SOCK_STREAM, socket.IPPROTO_MPTCP if mptcp else 0)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(8)
    return srv


def sink(srv: socket.socket, conns: int = 1) -> threading.Thread:
    """Accept CONNS connections and read each to its end (or reset)."""

    def body() -> None:
        for _ in range(conns):
            c, _ = srv.accept()
            try:
                while c.recv(1 << 16):
                    pass
            except OSError:
                pass
            finally:
                c.close()

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t


def connect(ns: str, addr: str, port: int, mptcp: bool = True) -> socket.socket:
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with netns.enter(ns):
        s = socket.socket(fam, socket.SOCK_STREAM, socket.IPPROTO_MPTCP if mptcp else 0)
    s.settimeout(10)
    s.connect((addr, port))
    return s


def send_for(s: socket.socket, seconds: float, chunk: int = 4000, gap: float = 0.01,
             between: Callable[[float], None] | None = None) -> int:
    """Send CHUNK bytes every GAP seconds for SECONDS; call between(elapsed) each round."""
    t0 = time.monotonic()
    sent = 0
    payload = b"x" * chunk
    while (el := time.monotonic() - t0) < seconds:
        s.sendall(payload)
        sent += chunk
        if between is not None:
            between(el)
        time.sleep(gap)
    return sent


def abort(s: socket.socket) -> None:
    """Abortive close (SO_LINGER 0): MPTCP answers with MP_FASTCLOSE."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
