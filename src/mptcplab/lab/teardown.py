"""Remove a lab, or every lab: processes first, then namespaces, then state.

Works from the state file alone, so it also cleans up after a crash or SIGKILL.
Processes still inside a lab namespace (started by a user's `exec`, say) are stopped
too: the namespace is the lab's, so whatever runs in it belongs to the lab.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time

from mptcplab.kernel import netns
from mptcplab.lab import procs
from mptcplab.lab import state as state_mod
from mptcplab.lab.state import LabState


def destroy(lab: LabState) -> list[str]:
    """Remove everything LAB made. Returns the namespaces that were removed."""
    procs.stop_all(lab)
    for ns in lab.namespaces:
        _kill_inside(ns)
    removed = [ns for ns in reversed(lab.namespaces) if netns.delete(ns)]
    shutil.rmtree(lab.directory, ignore_errors=True)
    return removed


def _kill_inside(ns: str) -> None:
    pids = netns.pids_in(ns)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2
    while pids and time.monotonic() < deadline:
        for pid in list(pids):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        pids = [p for p in pids if procs.starttime(p) is not None and not procs._zombie(p)]
        if pids:
            time.sleep(0.01)


def clean_all() -> list[str]:
    """Remove every lab with state on this machine, complete or not. Returns lab names."""
    done = []
    for name in state_mod.names():
        try:
            lab = state_mod.load(name)
        except Exception:  # unreadable state: still remove what its name pins
            lab = LabState(name=name)
        destroy(lab)
        done.append(name)
    if state_mod.STATE_ROOT.is_dir():
        for entry in state_mod.STATE_ROOT.iterdir():  # half-made dirs with no state.json yet
            if entry.is_dir() and not (entry / "state.json").exists():
                shutil.rmtree(entry, ignore_errors=True)
    return done
