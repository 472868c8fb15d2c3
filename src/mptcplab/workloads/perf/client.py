"""The perf client: `run_client(host, ...) -> PerfResult`."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from mptcplab import __version__
from mptcplab.errors import MptcplabError
from mptcplab.kernel import counters
from mptcplab.kernel import netns as netns_mod
from mptcplab.kernel.sockopt import SubflowReader, mptcp_info
from mptcplab.workloads.perf import result as res
from mptcplab.workloads.perf.common import DIR_CODE, DataConn, Params, stream_socket
from mptcplab.workloads.perf.events import EventRecorder
from mptcplab.workloads.perf.protocol import (
    DEFAULT_PORT,
    KIND_CONTROL,
    KIND_DATA,
    Control,
    ProtocolError,
    new_session,
    pack_hello,
)
from mptcplab.workloads.perf.sampler import Sampler
from mptcplab.workloads.perf.schedule import Scheduler, SubflowAction
from mptcplab.workloads.perf.stream import Pattern
from mptcplab.workloads.perf.transfer import StreamEnd, compare, recv_stream, send_stream

IntervalCallback = Callable[[dict[str, Any]], None]


def run_client(host: str, port: int = DEFAULT_PORT, *, duration: float | None = 10.0,
               nbytes: int | None = None, streams: int = 1, mode: str = "upload",
               rate_bps: float | None = None, tcp: bool = False, sample_interval: float = 0.1,
               interval: float = 1.0, verify: bool = True, congestion: str | None = None,
               netns: str | None = None, subflow_at: list[SubflowAction] | None = None,
               on_interval: IntervalCallback | None = None, connect_timeout: float = 10.0) -> res.PerfResult:
    """Run one test against a perf server at HOST:PORT and return the full result.

    MODE is upload (client sends), download (server sends) or bidir. NETNS runs the
    client (its sockets, counters and event listener) in that namespace. ON_INTERVAL is
    called with each report interval as it completes (for live output).
    """
    params = Params(mode=mode, duration=None if nbytes else duration, nbytes=nbytes, streams=streams,
                    rate_bps=rate_bps, sample_interval=sample_interval, verify=verify,
                    congestion=congestion, seed=random.getrandbits(32), mptcp=not tcp).validate()
    if interval <= 0:
        raise MptcplabError("report interval must be positive")
    return _Run(host, port, params, interval, netns, subflow_at or [], on_interval, connect_timeout).run()


class _Run:
    def __init__(self, host: str, port: int, params: Params, interval: float, netns: str | None,
                 subflow_at: list[SubflowAction], on_interval: IntervalCallback | None,
                 connect_timeout: float) -> None:
        self.host, self.port, self.params, self.interval = host, port, params, interval
        self.netns = netns
        self.subflow_at = subflow_at
        self.on_interval = on_interval
        self.connect_timeout = connect_timeout
        self.samples: list[dict[str, Any]] = []
        self.conns: list[DataConn] = []
        self.server_result: dict[str, Any] | None = None
        self.control_error: str | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._printed = 0  # intervals already given to on_interval

    # -- setup -------------------------------------------------------------------------
    def _resolve(self) -> tuple[int, tuple]:
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise MptcplabError(f"cannot resolve {self.host!r}: {exc.strerror}") from None
        family, _, _, _, addr = infos[0]
        return family, addr

    def _connect(self, family: int, addr: tuple, mptcp: bool, hello: bytes) -> socket.socket:
        is_data = hello[5] == KIND_DATA
        sock = stream_socket(family, mptcp, self.params.congestion if is_data else None)
        sock.settimeout(self.connect_timeout)
        try:
            sock.connect(addr)
        except OSError as exc:
            sock.close()
            raise MptcplabError(f"cannot connect to perf server {self.host} port {self.port}: "
                                f"{exc.strerror or exc}") from None
        sock.settimeout(None)
        sock.sendall(hello)
        return sock

    def run(self) -> res.PerfResult:
        p = self.params
        session = new_session()
        try:
            before = counters.read(self.netns)
            counters_error = None
        except OSError as exc:
            before, counters_error = {}, f"counters unavailable: {exc}"
        events = EventRecorder(self.netns)
        events.start()
        try:
            with netns_mod.enter(self.netns):
                family, addr = self._resolve()
                control = Control(self._connect(family, addr, False, pack_hello(KIND_CONTROL, session)))
        except BaseException:
            events.stop()
            raise
        try:
            control.send({"type": "hello", "version": 1, "params": p.to_dict(), "client": {
                "host": os.uname().nodename, "kernel": os.uname().release, "tool": __version__}})
            ready = control.expect("ready")
            with netns_mod.enter(self.netns):
                for i in range(p.streams):
                    for d in p.directions:
                        sock = self._connect(family, addr, p.mptcp, pack_hello(KIND_DATA, session, i, DIR_CODE[d]))
                        conn = DataConn(sock, f"{d}/{i}", d, StreamEnd(f"{d}/{i}", "sender" if d == "c2s" else "receiver"))
                        conn.describe()
                        self.conns.append(conn)
            control.send({"type": "start"})
            t0, t0_wall = time.monotonic(), time.time()
            sampler = self._transfer(control, t0)
            events.stop()
            after = counters.read(self.netns) if counters_error is None else {}
            mine = [c.to_dict() for c in self.conns]
            control.send({"type": "result", "streams": mine})
        finally:
            self._stop.set()
            events.stop()
            for c in self.conns:
                c.sock.close()
            control.close()
        if self.server_result is None:
            raise ProtocolError(self.control_error or "the server sent no result")
        return self._assemble(ready, t0_wall, sampler, counters.delta(before, after), counters_error,
                              events)

    # -- the transfer ------------------------------------------------------------------
    def _transfer(self, control: Control, t0: float) -> Sampler:
        p = self.params
        lock = threading.Lock()

        def add_sample(s: dict[str, Any], origin: str) -> None:
            s["origin"] = origin
            with lock:
                self.samples.append(s)

        sampler = Sampler(p.sample_interval, lambda s: add_sample(s, "client"))
        reader = threading.Thread(target=self._read_control, args=(control, add_sample),
                                  name="perf-control", daemon=True)
        pattern = Pattern(p.seed)
        threads = []
        for conn in self.conns:
            if conn.direction == "c2s":
                sampler.add(conn.sock, conn.end)
                threads.append(threading.Thread(target=send_stream, args=(conn.sock, pattern, conn.end), kwargs={
                    "duration": p.duration, "nbytes": p.nbytes, "rate_bps": p.stream_rate, "stop": self._stop,
                    "on_drained": (lambda k=conn.key: sampler.final(k))}, name=f"perf-{conn.key}", daemon=True))
            else:
                threads.append(threading.Thread(target=recv_stream, args=(conn.sock, conn.end),
                                                kwargs={"verify": p.verify}, name=f"perf-{conn.key}", daemon=True))
        scheduler = Scheduler(self.subflow_at, self.netns, self._connections)
        sampler.start(t0)
        reader.start()
        for t in threads:
            t.start()
        scheduler.start(t0)
        live = None
        if self.on_interval is not None:
            live = threading.Thread(target=self._live, args=(t0, lock), name="perf-live", daemon=True)
            live.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except KeyboardInterrupt:
            self._stop.set()
            raise
        finally:
            scheduler.stop()
            sampler.stop()
            self._done.set()
        reader.join(timeout=60)
        if live is not None:
            live.join(timeout=2)
        return sampler

    def _read_control(self, control: Control, add_sample: Callable[[dict[str, Any], str], None]) -> None:
        try:
            while True:
                msg = control.recv()
                if msg["type"] == "sample":
                    add_sample(msg["sample"], "server")
                elif msg["type"] == "result":
                    self.server_result = msg
                    return
        except (OSError, MptcplabError) as exc:
            self.control_error = str(exc)

    def _connections(self) -> list[tuple[str, int, tuple[str, int], list[tuple[str, int, str, int]]]]:
        out = []
        for c in self.conns:
            try:
                token = mptcp_info(c.sock).token
                subflows = [(sf.local[0], sf.local[1], sf.remote[0], sf.remote[1])
                            for sf in SubflowReader(c.sock).read().subflows]
            except OSError:
                continue
            out.append((c.key, token, c.remote, subflows))
        return out

    def _live(self, t0: float, lock: threading.Lock) -> None:
        k = 0
        lag = 0.15  # server samples travel over the control connection
        while not self._done.wait(max(0.0, t0 + (k + 1) * self.interval + lag - time.monotonic())):
            with lock:
                samples = list(self.samples)
            entries = res.intervals(res.build_series(samples), self.interval, end=(k + 1) * self.interval, first=k)
            for e in entries:
                assert self.on_interval is not None
                self.on_interval(e)
            k += 1
            self._printed = k

    # -- the result --------------------------------------------------------------------
    def _assemble(self, ready: dict[str, Any], t0_wall: float, sampler: Sampler, client_delta: dict[str, int],
                  counters_error: str | None, events: EventRecorder) -> res.PerfResult:
        p = self.params
        srv = self.server_result or {}
        series = res.build_series(self.samples)
        all_intervals = res.intervals(series, self.interval)
        if self.on_interval is not None:
            for e in all_intervals[self._printed:]:
                self.on_interval(e)
        server_streams = {s["key"]: s for s in srv.get("streams", [])}
        tokens = {c.token for c in self.conns if c.token}
        client_events = events.for_tokens(tokens)
        server_events = srv.get("events", [])
        problems: list[str] = []
        streams = []
        totals: dict[str, dict[str, Any]] = {}
        for c in sorted(self.conns, key=lambda c: c.key):
            mine = c.to_dict()
            theirs = server_streams.get(c.key)
            if theirs is None:
                problems.append(f"{c.key}: the server did not report this stream")
                continue
            sender, receiver = (mine, theirs) if c.direction == "c2s" else (theirs, mine)
            stream_problems = compare(sender, receiver)
            problems += stream_problems
            st = series.get(c.key, {"t": [], "bytes": [], "token": sender.get("token"), "subflows": {}})
            side_events, side_t0 = ((client_events, t0_wall) if c.direction == "c2s"
                                    else (server_events, srv.get("t0_wall", t0_wall)))
            streams.append({
                "key": c.key, "direction": c.direction, "index": int(c.key.split("/")[1]),
                "sender": "client" if c.direction == "c2s" else "server",
                "mptcp": sender.get("mptcp"), "token": st.get("token") or sender.get("token"),
                "sender_end": sender, "receiver_end": receiver, "ok": not stream_problems,
                "subflows": res.subflow_summaries(st, side_events, side_t0),
            })
            tot = totals.setdefault(c.direction, {"bytes_sent": 0, "bytes_received": 0, "seconds": 0.0})
            tot["bytes_sent"] += sender["bytes"]
            tot["bytes_received"] += receiver["bytes"]
            tot["seconds"] = max(tot["seconds"], sender["seconds"])
        for tot in totals.values():
            tot["bits_per_second"] = tot["bytes_received"] * 8 / max(tot["seconds"], 1e-9)
        data = {
            "schema": res.SCHEMA, "version": res.SCHEMA_VERSION,
            "meta": {
                "tool": f"mptcplab {__version__}", "started": t0_wall, "host": self.host, "port": self.port,
                "protocol": "mptcp" if p.mptcp else "tcp", "params": p.to_dict(), "interval": self.interval,
                "client": {"host": os.uname().nodename, "kernel": os.uname().release, "netns": self.netns},
                "server": ready.get("server", {}),
                "sampling": {"interval": p.sample_interval, "client_samples": sampler.count,
                             "client_cpu_seconds": round(sampler.cpu_seconds, 6),
                             "server": srv.get("sampler", {})},
            },
            "streams": streams,
            "intervals": all_intervals,
            "totals": totals,
            "server": {"streams": srv.get("streams", []),
                       "received_bytes": sum(s["bytes"] for s in srv.get("streams", []) if s["role"] == "receiver"),
                       "sent_bytes": sum(s["bytes"] for s in srv.get("streams", []) if s["role"] == "sender")},
            "counters": {"client": client_delta, "server": srv.get("counters", {}),
                         "errors": [e for e in (counters_error, srv.get("counters_error")) if e]},
            "events": {"client": client_events, "server": server_events,
                       "errors": [e for e in (events.error, srv.get("events_error")) if e]},
            "schedule": [a.to_dict() for a in self.subflow_at],
            "check": {"ok": not problems, "problems": problems, "method": "crc32" if p.verify else "bytes"},
        }
        return res.PerfResult(data)
