"""Background processes of a lab: started from argument lists inside a namespace,
recorded with their start time, and stopped by that pid only (never by name).

The start time (field 22 of /proc/PID/stat) guards against pid reuse: a recorded pid
whose start time differs is some other program now, and is left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence

from mptcplab.kernel import netns
from mptcplab.lab.state import LabState, ProcessRecord


def starttime(pid: int) -> int | None:
    """Kernel start time of PID in clock ticks, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return int(data.rsplit(b")", 1)[1].split()[19])


def alive(rec: ProcessRecord) -> bool:
    return starttime(rec.pid) == rec.starttime


def start(
    state: LabState, role: str, node: str | None, argv: Sequence[str], *,
    stdout: int | None = subprocess.DEVNULL, stderr: int | None = subprocess.DEVNULL,
) -> subprocess.Popen:
    """Start ARGV inside NODE's namespace (None: no namespace) and record it in the state."""
    ns = state.netns(node) if node else None
    proc = subprocess.Popen(
        netns.argv(ns, argv), stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
        start_new_session=True, close_fds=True,
    )
    st = starttime(proc.pid) or 0
    state.processes.append(ProcessRecord(proc.pid, st, role, node, list(argv)))
    state.save()
    return proc


def stop(rec: ProcessRecord, grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL after GRACE seconds; only if the pid is still our process."""
    if not alive(rec):
        return
    try:
        os.kill(rec.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(rec.pid)
        if not alive(rec) or _zombie(rec.pid):
            _reap(rec.pid)
            return
        time.sleep(0.01)
    if alive(rec):
        with contextlib.suppress(ProcessLookupError):
            os.kill(rec.pid, signal.SIGKILL)
    _reap(rec.pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return False


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_all(state: LabState) -> None:
    for rec in reversed(state.processes):
        stop(rec)
    state.processes.clear()
