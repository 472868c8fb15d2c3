"""The lab form: `mptcplab perf [--lab L] CLIENT SERVER`.

The server runs as a child process inside SERVER's namespace (nsenter execs it, so the
child's pid is the server's own pid, and it is stopped by that pid; it also dies with
its parent through PR_SET_PDEATHSIG). The client runs in this process, its sockets
created in CLIENT's namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from mptcplab.errors import LabError
from mptcplab.kernel import netns as netns_mod
from mptcplab.workloads.perf.client import run_client
from mptcplab.workloads.perf.protocol import DEFAULT_PORT
from mptcplab.workloads.perf.result import PerfResult

READY_PREFIX = "mptcplab perf server listening on "
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ServerProcess:
    """`mptcplab perf server --one-off` in namespace NETNS, as a child stopped by its pid."""

    def __init__(self, netns: str | None, port: int = DEFAULT_PORT, tcp: bool = False) -> None:
        cmd = [sys.executable, "-m", "mptcplab", "perf", "server", "--port", str(port), "--one-off"]
        if tcp:
            cmd.append("--tcp")
        self.argv = netns_mod.argv(netns, cmd)
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, preexec_fn=_die_with_parent)
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    break
                line = self.proc.stdout.readline()
                if not line:
                    break
                line = line.rstrip("\n")
                if line.startswith(READY_PREFIX):
                    return
                self.output.append(line)
        finally:
            sel.close()
        self.stop()
        raise LabError("perf server did not start: " + (" | ".join(self.output) or "no output"))

    def stop(self, timeout: float = 10.0) -> int | None:
        """Wait for the one-off server to finish (it exits after its session), kill it after TIMEOUT."""
        if self.proc is None:
            return None
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()  # by the pid we started, nothing else
            out, _ = self.proc.communicate()
        self.output += [line for line in (out or "").splitlines() if line]
        return self.proc.returncode


def run_in_lab(lab: str | None, client: str, server: str, *, port: int = DEFAULT_PORT, tcp: bool = False,
               family: int = 4, on_server_line: Callable[[str], None] | None = None,
               **client_kwargs: Any) -> tuple[PerfResult, list[str]]:
    """Start a server in SERVER's namespace, run the client from CLIENT's; (result, server output)."""
    from mptcplab.lab.state import resolve

    state = resolve(lab)
    client_ns, server_ns = state.netns(client), state.netns(server)
    host = state.address(server, family=family)
    srv = ServerProcess(server_ns, port=port, tcp=tcp)
    srv.start()
    try:
        result = run_client(str(host), port, tcp=tcp, netns=client_ns, **client_kwargs)
    finally:
        srv.stop()
    if on_server_line is not None:
        for line in srv.output:
            on_server_line(line)
    result.data["meta"]["lab"] = {"name": state.name, "client": client, "server": server}
    return result, srv.output
