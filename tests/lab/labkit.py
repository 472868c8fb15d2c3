"""Helpers for root lab tests: labs that are always torn down, kernel facts read back as JSON,
MPTCP sockets opened inside lab namespaces."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

from conftest import unique
from mptcplab.kernel import netns
from mptcplab.lab import state as state_mod

IPPROTO_MPTCP = 262


def lab_namespaces(lab: str) -> list[str]:
    """Namespaces on the machine that belong to lab LAB (named LAB-NODE)."""
    return [ns for ns in netns.list_names() if ns.startswith(f"{lab}-")]


def purge(lab: str, state_root: os.PathLike | None = None) -> None:
    """Remove by force whatever lab LAB left: processes in its namespaces, namespaces, state."""
    for ns in lab_namespaces(lab):
        for pid in netns.pids_in(ns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        netns.delete(ns)
    shutil.rmtree(os.path.join(state_root or state_mod.STATE_ROOT, lab), ignore_errors=True)


class LabFactory:
    """Builds labs for one test (unique names) and removes them afterwards, even on failure."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.labs: list = []

    def name(self, prefix: str = "l") -> str:
        name = unique(prefix)
        self.names.append(name)
        return name

    def __call__(self, topology: object, prefix: str = "l", up: bool = True):  # noqa: ANN204 - Lab
        from mptcplab import Lab

        lab = Lab(topology, name=self.name(prefix))
        self.labs.append(lab)
        return lab.up() if up else lab

    def cleanup(self) -> None:
        for lab in self.labs:
            with contextlib.suppress(Exception):
                lab.down()
        for name in self.names:
            purge(name)


@contextlib.contextmanager
def lab_factory() -> Iterator[LabFactory]:
    factory = LabFactory()
    try:
        yield factory
    finally:
        factory.cleanup()


def ip_json(ns: str | None, *args: str) -> list[dict]:
    """`ip -j ARGS` inside NS (None: here), parsed."""
    cmd = ["ip", "-j", *(["-n", ns] if ns else []), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30).stdout
    return json.loads(out) if out.strip() else []


def ping(ns: str, dst: str, src: str | None = None, timeout: float = 1.0) -> bool:
    """One ping from namespace NS (from address SRC): True when the reply came."""
    cmd = ["ping", "-n", "-q", "-c", "1", "-W", f"{timeout:g}"] + (["-I", src] if src else []) + [dst]
    return subprocess.run(netns.argv(ns, cmd), capture_output=True, timeout=timeout + 10).returncode == 0


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> object:
    """Poll PREDICATE until it returns something true (returned) or TIMEOUT passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def mptcp_socket(ns: str, family: int = socket.AF_INET) -> socket.socket:
    """An MPTCP socket living in namespace NS (a socket stays where it was created)."""
    with netns.enter(ns):
        return socket.socket(family, socket.SOCK_STREAM, IPPROTO_MPTCP)


@contextlib.contextmanager
def mptcp_connection(client_ns: str, server_ns: str, server_addr: str,
                     family: int = socket.AF_INET) -> Iterator[tuple[socket.socket, socket.socket]]:
    """An established MPTCP connection client -> server, data exchanged both ways."""
    srv = mptcp_socket(server_ns, family)
    cli = conn = None
    try:
        srv.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        srv.listen(1)
        srv.settimeout(10)
        cli = mptcp_socket(client_ns, family)
        cli.settimeout(10)
        cli.connect((server_addr, srv.getsockname()[1]))
        conn, _ = srv.accept()
        cli.sendall(b"m" * 2000)
        got = 0
        while got < 2000:
            got += len(conn.recv(4096))
        conn.sendall(b"p" * 2000)
        got = 0
        while got < 2000:
            got += len(cli.recv(4096))
        yield cli, conn
    finally:
        for s in (cli, conn, srv):
            if s is not None:
                s.close()
