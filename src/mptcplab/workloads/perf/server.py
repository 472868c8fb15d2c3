"""The perf server: one listening port (MPTCP by default, plain TCP clients fall back),
any number of sessions, each sending and receiving what its client asked for and
reporting back what it received, with its own counters and path-manager events."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from mptcplab.errors import KernelError, MptcplabError
from mptcplab.kernel import counters
from mptcplab.kernel import netns as netns_mod
from mptcplab.workloads.perf.common import DIR_NAME, DataConn, Params, stream_socket
from mptcplab.workloads.perf.events import EventRecorder
from mptcplab.workloads.perf.protocol import (
    DEFAULT_PORT,
    KIND_CONTROL,
    KIND_DATA,
    Control,
    ProtocolError,
    read_hello,
)
from mptcplab.workloads.perf.sampler import Sampler
from mptcplab.workloads.perf.stream import Pattern
from mptcplab.workloads.perf.transfer import StreamEnd, compare, recv_stream, send_stream

Log = Callable[[str], None]


class Server:
    """`Server(port=5201).start()` serves in background threads until stop().

    NETNS: create the listening socket inside that namespace (accepted sockets stay
    there); counters and events are read there too. ONE_OFF: stop after one session.
    Each finished session's server-side report is appended to `results`.
    """

    def __init__(self, bind: str | None = None, port: int = DEFAULT_PORT, *, tcp: bool = False,
                 netns: str | None = None, one_off: bool = False, log: Log | None = None) -> None:
        self.bind = bind
        self.port = port
        self.tcp = tcp
        self.netns = netns
        self.one_off = one_off
        self.log = log or (lambda _msg: None)
        self.results: list[dict[str, Any]] = []
        self._sessions: dict[bytes, Session] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        if self._listener is None:
            raise MptcplabError("server not started")
        host, port = self._listener.getsockname()[:2]
        return host, port

    def start(self) -> Server:
        with netns_mod.enter(self.netns):
            self._listener = self._listen()
        self._listener.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept_loop, name="perf-accept", daemon=True)
        self._thread.start()
        return self

    def _listen(self) -> socket.socket:
        candidates = [self.bind] if self.bind else ["::", "0.0.0.0"]
        last: OSError | None = None
        for host in candidates:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                sock = stream_socket(family, not self.tcp)
            except OSError as exc:
                last = exc
                continue
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and host == "::":
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.bind((host, self.port))
                sock.listen(128)
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        raise KernelError(f"perf server cannot listen on {self.bind or '*'} port {self.port}: "
                          f"{last.strerror if last else 'no address'}")

    def serve_forever(self) -> None:
        """Block until stop() (or, for a one-off server, until its session ended)."""
        if self._thread is None:
            self.start()
        try:
            while not self._stopped.wait(0.5):
                pass
        finally:
            self.stop()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        with self._lock:
            sessions = list(self._sessions.values())
        for s in sessions:
            s.abort()
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopped.is_set():
                    return
                continue
            threading.Thread(target=self._handle, args=(conn,), name="perf-conn", daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            kind, session_id, stream, direction = read_hello(conn)
            conn.settimeout(None)
        except (OSError, ProtocolError) as exc:
            self.log(f"dropped a connection: {exc}")
            conn.close()
            return
        if kind == KIND_DATA:
            with self._lock:
                session = self._sessions.get(session_id)
            if session is None:
                conn.close()
            else:
                session.add_data(conn, stream, direction)
            return
        if kind != KIND_CONTROL:
            conn.close()
            return
        session = Session(self, Control(conn), session_id)
        with self._lock:
            self._sessions[session_id] = session
        try:
            result = session.run()
            self.results.append(result)
        except (OSError, MptcplabError) as exc:
            self.log(f"session failed: {exc}")
            with contextlib.suppress(OSError):
                session.control.send({"type": "error", "message": str(exc)})
        finally:
            session.abort()
            session.control.close()
            with self._lock:
                self._sessions.pop(session_id, None)
            if self.one_off:
                self._stopped.set()


class Session:
    """One client's test on the server side."""

    def __init__(self, server: Server, control: Control, session_id: bytes) -> None:
        self.server = server
        self.control = control
        self.id = session_id
        self.params: Params | None = None
        self.conns: list[DataConn] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()

    def add_data(self, sock: socket.socket, stream: int, direction: int) -> None:
        key = f"{DIR_NAME.get(direction, '?')}/{stream}"
        role = "receiver" if key.startswith("c2s") else "sender"
        conn = DataConn(sock, key, key[:3], StreamEnd(key, role))
        try:
            conn.describe()
        except OSError:
            sock.close()
            return
        with self._cond:
            self.conns.append(conn)
            self._cond.notify_all()

    def abort(self) -> None:
        self._stop.set()

    def run(self) -> dict[str, Any]:
        srv = self.server
        hello = self.control.expect("hello")
        params = self.params = Params.from_dict(hello.get("params", {}))
        try:
            before = counters.read(srv.netns)
            counters_error = None
        except OSError as exc:
            before, counters_error = {}, f"counters unavailable: {exc}"
        events = EventRecorder(srv.netns)
        events.start()
        self.control.send({"type": "ready", "server": {
            "host": os.uname().nodename, "kernel": os.uname().release, "netns": srv.netns,
            "listener": "tcp" if srv.tcp else "mptcp", "pid": os.getpid()}})
        self.control.expect("start")
        t0, t0_wall = time.monotonic(), time.time()
        expected = params.streams * len(params.directions)
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.conns) >= expected, timeout=15):
                raise ProtocolError(f"only {len(self.conns)} of {expected} data connections arrived")
        sampler = Sampler(params.sample_interval,
                          lambda s: self.control.send({"type": "sample", "sample": s}))
        pattern = Pattern(params.seed)
        threads = []
        for conn in sorted(self.conns, key=lambda c: c.key):
            if conn.direction == "c2s":
                target, kwargs = recv_stream, {"verify": params.verify}
                args: tuple = (conn.sock, conn.end)
            else:
                if params.congestion:
                    _set_congestion(conn.sock, params.congestion)
                sampler.add(conn.sock, conn.end)
                target, args = send_stream, (conn.sock, pattern, conn.end)
                kwargs = {"duration": params.duration, "nbytes": params.nbytes,
                          "rate_bps": params.stream_rate, "stop": self._stop,
                          "on_drained": (lambda k=conn.key: sampler.final(k))}
            threads.append(threading.Thread(target=target, args=args, kwargs=kwargs,
                                            name=f"perf-{conn.key}", daemon=True))
        sampler.start(t0)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sampler.stop()
        events.stop()
        after = counters.read(srv.netns) if counters_error is None else {}
        tokens = {c.token for c in self.conns if c.token}
        report = {
            "type": "result", "t0_wall": t0_wall,
            "streams": [c.to_dict() for c in self.conns],
            "counters": counters.delta(before, after), "counters_error": counters_error,
            "events": events.for_tokens(tokens), "events_error": events.error,
            "sampler": {"samples": sampler.count, "cpu_seconds": round(sampler.cpu_seconds, 6)},
        }
        self.control.send(report)
        client = self.control.expect("result")
        problems = _check(report["streams"], client.get("streams", []))
        report["problems"] = problems
        srv.log(_summary(report, problems))
        return report


def _set_congestion(sock: socket.socket, name: str) -> None:
    # the client reports what it asked for; if this kernel lacks it the server keeps its default
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, name.encode())


def _check(mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[str]:
    by_key = {s["key"]: s for s in theirs}
    problems = []
    for s in mine:
        other = by_key.get(s["key"])
        if other is None:
            problems.append(f"{s['key']}: the client did not report this stream")
            continue
        sender, receiver = (s, other) if s["role"] == "sender" else (other, s)
        problems += compare(sender, receiver)
    return problems


def _summary(report: dict[str, Any], problems: list[str]) -> str:
    parts = []
    for s in sorted(report["streams"], key=lambda s: s["key"]):
        verb = "received" if s["role"] == "receiver" else "sent"
        parts.append(f"{s['key']} {verb} {s['bytes']} B in {s['seconds']:.2f} s "
                     f"({s['bytes'] * 8 / max(s['seconds'], 1e-9) / 1e9:.2f} Gbit/s) from {s['remote'][0]}")
    status = "data verified (CRC-32)" if not problems else "PROBLEMS: " + "; ".join(problems)
    return "; ".join(parts) + f"; {status}"
