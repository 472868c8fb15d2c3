"""Moving the pattern stream over one data connection: sender, receiver, rate limit, drain.

Speed matters (tens of Gbit/s on a veth pair): the sender hands memoryview slices of one
precomputed buffer to sendall, the receiver recv_into's a reused 1 MiB buffer and runs
zlib.crc32 on it (C, GIL released). Neither loop does per-byte work in Python.
"""

from __future__ import annotations

import array
import fcntl
import queue
import socket
import struct
import termios
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mptcplab.workloads.perf.stream import MAX_CHUNK, Pattern

MIN_CHUNK = 16 << 10
START_CHUNK = 128 << 10
RECV_BUF = 1 << 20
SEND_POLL = 0.1  # seconds a blocked send waits before the loop looks at the clock
RING = 4  # receive buffers in flight between the reader and the CRC thread


@dataclass
class StreamEnd:
    """One end's account of one data connection."""

    key: str  # "c2s/0", "s2c/1", ...
    role: str  # "sender" | "receiver"
    bytes: int = 0
    crc: int = 0
    verified: bool = True  # False: receiver skipped the CRC (--no-verify)
    start: float = 0.0  # time.monotonic()
    end: float = 0.0
    drained: bool = True  # sender: every byte was acknowledged before shutdown
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-9)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "role": self.role, "bytes": self.bytes, "crc32": self.crc,
            "verified": self.verified, "seconds": round(self.seconds, 6),
            "drained": self.drained, "error": self.error, **self.extra,
        }


class TokenBucket:
    """Allows RATE bytes/s on average with bursts of BURST bytes; take() sleeps as needed."""

    def __init__(self, rate_bytes: float, burst: int) -> None:
        self.rate = float(rate_bytes)
        self.burst = float(burst)
        self.tokens = float(burst)
        self.last = time.monotonic()

    def take(self, n: int, stop: threading.Event | None = None) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < n:
            wait = (n - self.tokens) / self.rate
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)
            now = time.monotonic()
            self.tokens += (now - self.last) * self.rate
            self.last = now
        self.tokens -= n


def set_io_timeout(sock: socket.socket, seconds: float | None) -> None:
    """SO_SNDTIMEO/SO_RCVTIMEO: a stalled transfer fails after SECONDS instead of hanging,
    while the socket stays in blocking mode (Python's settimeout polls before every call)."""
    sec = int(seconds or 0)
    usec = int(((seconds or 0) - sec) * 1e6)
    tv = struct.pack("@ll", sec, usec)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)


def unsent_bytes(sock: socket.socket) -> int:
    """SIOCOUTQ: bytes written but not yet acknowledged (MPTCP: at the data level)."""
    buf = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf, True)
    return buf[0]


def send_stream(sock: socket.socket, pattern: Pattern, end: StreamEnd, *,
                duration: float | None, nbytes: int | None, rate_bps: float | None,
                stop: threading.Event, on_drained: Callable[[], None] | None = None,
                drain_timeout: float = 30.0, io_timeout: float | None = 60.0) -> None:
    """Send the stream until DURATION seconds or NBYTES bytes, wait until it is all
    acknowledged, call ON_DRAINED (the final sample), then shut down and await the peer's close."""
    chunk = START_CHUNK
    bucket = None
    if rate_bps:
        rate = rate_bps / 8
        chunk = int(min(max(rate / 100, MIN_CHUNK), MAX_CHUNK))  # ~10 ms of data per send
        bucket = TokenBucket(rate, chunk)
    sent = 0
    end.start = time.monotonic()
    deadline = end.start + duration if duration else None
    view = pattern.view
    period = pattern.period
    # a short send timeout lets a timed run stop on time even while the connection is
    # stalled; send() (not sendall) so that a partial write is still counted exactly
    set_io_timeout(sock, SEND_POLL)
    send = sock.send
    last_progress = end.start
    try:
        while not stop.is_set():
            n = chunk if nbytes is None else min(chunk, nbytes - sent)
            if n <= 0:
                break
            t = time.monotonic()
            if deadline is not None and t >= deadline:
                break
            if bucket is not None:
                bucket.take(n, stop)
            start = sent % period
            piece = view[start:start + n]
            pos = 0
            while pos < n:
                try:
                    pos += send(piece[pos:])
                    last_progress = time.monotonic()
                except BlockingIOError:
                    now = time.monotonic()
                    if stop.is_set() or (deadline is not None and now >= deadline):
                        break
                    if io_timeout is not None and now - last_progress > io_timeout:
                        raise TimeoutError(f"no progress for {io_timeout:g} s") from None
            sent += pos
            end.bytes = sent
            if pos < n:
                break
            if bucket is None:  # adapt the chunk: ~2-20 ms per send bounds the overshoot
                took = time.monotonic() - t
                if took < 0.002 and chunk < MAX_CHUNK:
                    chunk *= 2
                elif took > 0.02 and chunk > MIN_CHUNK:
                    chunk //= 2
        end.end = time.monotonic()
        end.crc = pattern.crc(sent)
        end.drained = _drain(sock, stop, drain_timeout)
        if on_drained is not None:
            on_drained()
        sock.shutdown(socket.SHUT_WR)
        set_io_timeout(sock, drain_timeout)
        while sock.recv(4096):  # the receiver closes once it has read everything
            pass
    except OSError as exc:
        end.end = end.end or time.monotonic()
        end.error = f"send: {exc.strerror or exc}"
        end.bytes = sent
        end.crc = pattern.crc(sent)
    finally:
        sock.close()


def _drain(sock: socket.socket, stop: threading.Event, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    try:
        while unsent_bytes(sock) > 0:
            if stop.is_set() or time.monotonic() > deadline:
                return False
            time.sleep(0.001)
    except OSError:
        return False
    return True


def recv_stream(sock: socket.socket, end: StreamEnd, *, verify: bool = True,
                timeout: float | None = 60.0) -> None:
    """Read to EOF, counting and CRC-ing every byte, then close (which tells the sender).

    The CRC runs in a second thread over a ring of buffers, so reading never waits for it:
    a receiver that falls behind closes the MPTCP receive window, and on this kernel a
    closed window costs far more than the CRC itself (the sender waits for a window probe).
    """
    ring = [bytearray(RECV_BUF) for _ in range(RING)]
    views = [memoryview(b) for b in ring]
    free: queue.SimpleQueue[int] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
    for i in range(RING):
        free.put(i)
    crc_box = [0]

    def crc_worker() -> None:
        crc = 0
        crc32 = zlib.crc32
        while True:
            i, k = full.get()
            if k < 0:
                break
            crc = crc32(views[i][:k], crc)
            free.put(i)
        crc_box[0] = crc

    worker = threading.Thread(target=crc_worker, name="perf-crc", daemon=True) if verify else None
    if worker is not None:
        worker.start()
    total = 0
    recv_into = sock.recv_into
    end.verified = verify
    end.start = time.monotonic()
    set_io_timeout(sock, timeout)
    try:
        while True:
            i = free.get() if verify else 0
            k = recv_into(ring[i])
            if not k:
                if verify:
                    free.put(i)
                break
            if verify:
                full.put((i, k))
            total += k
            end.bytes = total
    except OSError as exc:
        end.error = f"receive: {exc.strerror or exc}"
    finally:
        if worker is not None:
            full.put((0, -1))
            worker.join()
        end.end = time.monotonic()
        end.bytes = total
        end.crc = crc_box[0]
        for v in views:
            v.release()
        sock.close()


def compare(sender: dict[str, Any], receiver: dict[str, Any]) -> list[str]:
    """Problems found when the two ends' accounts of one stream disagree (empty: all good)."""
    key = sender.get("key", "?")
    problems = []
    for side in (sender, receiver):
        if side.get("error"):
            problems.append(f"{key}: {side['role']} error: {side['error']}")
    if sender["bytes"] != receiver["bytes"]:
        problems.append(f"{key}: sender sent {sender['bytes']} bytes, receiver got {receiver['bytes']}")
    elif receiver.get("verified", True) and sender["crc32"] != receiver["crc32"]:
        problems.append(
            f"{key}: data corrupted: CRC-32 sent {sender['crc32']:#010x}, received {receiver['crc32']:#010x}"
        )
    return problems
