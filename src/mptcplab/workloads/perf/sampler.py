"""Per-subflow sampling of the sending sockets, in one lightweight thread.

Every INTERVAL seconds the sampler reads MPTCP_FULL_INFO (or its fallbacks) of each
registered socket and records, per stream: the time since the run started, the bytes
the application has written, the connection token and every subflow's figures. A final
sample is taken by the sender itself once all its data is acknowledged.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from mptcplab.kernel.sockopt import FullInfo, SubflowReader
from mptcplab.workloads.perf.transfer import StreamEnd

Sample = dict[str, Any]


def make_sample(key: str, t: float, app_bytes: int, info: FullInfo, final: bool = False) -> Sample:
    return {
        "stream": key, "t": round(t, 6), "bytes": app_bytes, "final": final,
        "token": info.info.token, "fallback": info.info.fallback, "source": info.source,
        "subflows": [sf.to_dict() for sf in info.subflows],
    }


class Sampler:
    """Samples registered sockets every INTERVAL seconds; ON_SAMPLE gets each sample."""

    def __init__(self, interval: float, on_sample: Callable[[Sample], None]) -> None:
        self.interval = interval
        self.on_sample = on_sample
        self.t0 = time.monotonic()
        self._streams: dict[str, tuple[SubflowReader, StreamEnd]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cpu_seconds = 0.0  # thread CPU time spent sampling (for the benchmark)
        self.count = 0

    def add(self, sock: socket.socket, end: StreamEnd) -> None:
        with self._lock:
            self._streams[end.key] = (SubflowReader(sock), end)

    def start(self, t0: float | None = None) -> None:
        if t0 is not None:
            self.t0 = t0
        if self.interval > 0:
            self._thread = threading.Thread(target=self._run, name="perf-sampler", daemon=True)
            self._thread.start()

    def final(self, key: str) -> None:
        """Sample one stream now and stop sampling it (called by its sender after draining)."""
        with self._lock:
            entry = self._streams.pop(key, None)
        if entry is not None:
            self._sample_one(key, *entry, final=True)

    def _sample_one(self, key: str, reader: SubflowReader, end: StreamEnd, final: bool = False) -> None:
        try:
            info = reader.read()
        except OSError:
            return  # the socket closed under us: its final sample was taken before
        self.on_sample(make_sample(key, time.monotonic() - self.t0, end.bytes, info, final))

    def _run(self) -> None:
        start_cpu = time.thread_time()
        next_t = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                entries = list(self._streams.items())
            for key, (reader, end) in entries:
                self._sample_one(key, reader, end)
            self.count += 1
            self.cpu_seconds = time.thread_time() - start_cpu
            next_t += self.interval
            delay = next_t - time.monotonic()
            if delay < 0:  # fell behind: skip, don't burst
                next_t = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
