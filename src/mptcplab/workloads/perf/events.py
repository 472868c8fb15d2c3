"""Path-manager events during a run: when each connection and subflow came and went.

A PMEventListener (mptcplab.kernel.mptcp_pm, imported lazily) is subscribed in the
namespace of one side before its connections open; a thread collects every event, and
the run keeps those whose token is one of its own connections' local tokens.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any


class EventRecorder:
    """Collects mptcp_pm events of NETNS in a thread; unavailable (with a reason) without CAP_NET_ADMIN."""

    def __init__(self, netns: str | None) -> None:
        self.netns = netns
        self.events: list[Any] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener = None
        try:
            from mptcplab.kernel.mptcp_pm import PMEventListener

            self._listener = PMEventListener(netns)
        except Exception as exc:  # no MPTCP genl family, no permission: run without events
            self.error = f"path-manager events unavailable: {exc}"

    def start(self) -> None:
        if self._listener is not None:
            self._thread = threading.Thread(target=self._run, name="perf-pm-events", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                self.events += self._listener.read(timeout=0.1)
            except OSError as exc:
                self.error = f"path-manager events stopped: {exc}"
                return

    def stop(self) -> None:
        """Stop collecting (after a short grace so closing events are seen) and close."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=2)
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self.events += self._listener.read(timeout=0)
            self._listener.close()
            self._listener = None

    def for_tokens(self, tokens: set[int]) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.events if e.token in tokens]
