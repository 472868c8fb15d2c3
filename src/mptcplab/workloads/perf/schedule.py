"""Scheduled subflows: `--subflow-at 3s:add:10.0.2.1` and `--subflow-at 8s:del:10.0.2.1`.

Syntax: TIME:add:LOCAL[#ID][@REMOTE] or TIME:del:LOCAL. TIME is seconds from the start
("3", "3s", "2.5s", "500ms"). `add` asks the userspace path manager of the client's
namespace to open a subflow from LOCAL (local address id ID, default 100 + the spec's
position) to REMOTE (default: the connection's own remote address) at the server's
port, on every MPTCP data connection of the client. `del` closes every subflow whose
local address is LOCAL. The node must use the userspace path manager
(net.mptcp.path_manager=userspace, or pm_type=1 on older kernels).
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mptcplab.errors import ConfigError

_TIME = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)?$")


@dataclass
class SubflowAction:
    at: float
    action: str  # "add" | "del"
    local: str
    local_id: int | None = None
    remote: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "action": self.action, "local": self.local, "local_id": self.local_id,
                "remote": self.remote, "results": self.results}


def _addr(text: str, spec: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        raise ConfigError("--subflow-at", spec, f"{text!r} is not an IP address") from None


def parse(spec: str, position: int = 0) -> SubflowAction:
    """One --subflow-at value."""
    parts = spec.split(":", 2)
    if len(parts) != 3:
        raise ConfigError("--subflow-at", spec, "expected TIME:add:LOCAL[#ID][@REMOTE] or TIME:del:LOCAL")
    when, action, rest = parts
    m = _TIME.match(when.strip())
    if not m:
        raise ConfigError("--subflow-at", spec, f"time {when!r}: expected e.g. 3s, 2.5s or 500ms")
    at = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    action = action.strip().lower()
    if action not in ("add", "del"):
        raise ConfigError("--subflow-at", spec, f"action {action!r}: expected add or del")
    remote = None
    if "@" in rest:
        rest, remote_text = rest.split("@", 1)
        remote = _addr(remote_text, spec)
    local_id = None
    if "#" in rest:
        rest, id_text = rest.split("#", 1)
        if not id_text.isdigit() or not 1 <= int(id_text) <= 255:
            raise ConfigError("--subflow-at", spec, f"local id {id_text!r}: expected 1..255")
        local_id = int(id_text)
    if action == "del" and (remote or local_id):
        raise ConfigError("--subflow-at", spec, "del takes only the local address")
    if action == "add" and local_id is None:
        local_id = min(100 + position, 255)
    return SubflowAction(at=at, action=action, local=_addr(rest, spec), local_id=local_id, remote=remote)


class Scheduler:
    """Runs ACTIONS at their times against the connections CONNECTIONS() returns.

    CONNECTIONS() yields (stream key, token, remote (addr, port), current subflows as
    (local addr, local port, remote addr, remote port)).
    """

    def __init__(self, actions: list[SubflowAction], netns: str | None,
                 connections: Callable[[], list[tuple[str, int, tuple[str, int], list[tuple[str, int, str, int]]]]]) -> None:
        self.actions = sorted(actions, key=lambda a: a.at)
        self.netns = netns
        self.connections = connections
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, t0: float) -> None:
        if self.actions:
            self._thread = threading.Thread(target=self._run, args=(t0,), name="perf-subflows", daemon=True)
            self._thread.start()

    def _run(self, t0: float) -> None:
        from mptcplab.kernel.mptcp_pm import MptcpPM

        try:
            pm = MptcpPM(self.netns)
        except Exception as exc:
            for action in self.actions:
                action.results.append({"ok": False, "error": f"path manager unavailable: {exc}"})
            return
        with pm:
            for action in self.actions:
                if self._stop.wait(max(0.0, t0 + action.at - time.monotonic())):
                    return
                self._apply(pm, action, time.monotonic() - t0)

    def _apply(self, pm: Any, action: SubflowAction, t: float) -> None:
        for key, token, remote, subflows in self.connections():
            if action.action == "add":
                raddr = action.remote or remote[0]
                self._try(action, key, t, lambda tok=token, ra=raddr, rp=remote[1]: pm.subflow_create(
                    tok, action.local, action.local_id, ra, rp))
            else:
                matching = [sf for sf in subflows if sf[0] == action.local]
                if not matching:
                    action.results.append({"stream": key, "t": round(t, 3), "ok": False,
                                           "error": f"no subflow from {action.local}"})
                for laddr, lport, raddr, rport in matching:
                    self._try(action, key, t, lambda tok=token, la=laddr, lp=lport, ra=raddr, rp=rport:
                              pm.subflow_destroy(tok, la, lp, ra, rp))

    @staticmethod
    def _try(action: SubflowAction, key: str, t: float, call: Callable[[], None]) -> None:
        try:
            call()
            action.results.append({"stream": key, "t": round(t, 3), "ok": True, "error": None})
        except Exception as exc:
            action.results.append({"stream": key, "t": round(t, 3), "ok": False, "error": str(exc)})

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
