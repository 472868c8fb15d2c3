"""The fallback delay stage: delay and jitter in user space, for kernels without netem.

Run it INSIDE a lab namespace, one process per namespace, serving every NFQUEUE queue
of that namespace (one queue per interface direction)::

    argv = mptcplab.kernel.netns.argv(ns, stage_argv("/run/mptcplab/LAB/stage-NODE.json"))
    # = [..., sys.executable, "-m", "mptcplab.lab.delaystage", "--config", FILE, "--rt", "10"]

Packets reach it through `iptables -t mangle -A POSTROUTING -o IF -j NFQUEUE --queue-num N
--queue-bypass` (egress) or `... PREROUTING -i IF ...` (ingress); the rules come from
mptcplab.plan.shaping. Each packet is held in the kernel (only its id and length reach
user space) and released at max(previous release, arrival + delay + U(-jitter, +jitter)):
a FIFO delay line, which is what netem does when a rate is set. Release is one batched
verdict per queue ("accept every id <= N").

Config file (JSON; write it atomically, then send SIGHUP; applied within milliseconds)::

    {"queues": [{"num": 1, "name": "eth0/egress", "delay_s": 0.01, "jitter_s": 0.002,
                 "limit": 0}],
     "stats_path": "/run/mptcplab/LAB/stage-NODE.stats.json",
     "stats_interval_s": 0.5, "seed": null}

`limit` caps the packets held (0 = only the kernel's queue length); over it the packet
is dropped. Queues added on reload are bound, removed ones are drained (held packets
still leave on time) and then unbound.

Options: --rt PRIO runs the stage under SCHED_FIFO (it sleeps in select between
releases, so it uses little CPU but gets it at once: the delay stays exact while the
traffic keeps every CPU busy); --cpu N pins it.

Signals: SIGHUP re-reads the config; SIGUSR1 writes the stats file now; SIGTERM or
SIGINT releases every held packet, unbinds and exits 0. Stats file (atomic JSON):
release_late_us (median and p99 of how late release batches left), per queue packets, bytes, held (queue depth), max_held, drops (limit), id_gaps
(packets the kernel let bypass the stage, fail-open) and the kernel's own counters.

The stage opens nothing but a netlink socket and a self-pipe: it listens on no address.
It refuses to run unless its network namespace is one pinned under /run/netns (a lab
node), so it can never end up serving the host's own namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from mptcplab.errors import MptcplabError
from mptcplab.kernel import netns, nfqueue


@dataclass
class QueueState:
    """One delay line: settings, the held packets (release time, id) and counters."""

    num: int
    name: str = ""
    delay_s: float = 0.0
    jitter_s: float = 0.0
    limit: int = 0
    held: deque[tuple[float, int]] = field(default_factory=deque)
    last_release: float = 0.0
    last_id: int = -1
    packets: int = 0
    bytes: int = 0
    drops: int = 0
    id_gaps: int = 0
    max_held: int = 0
    draining: bool = False

    def settings(self, spec: dict[str, Any]) -> None:
        self.name = str(spec.get("name", self.name))
        self.delay_s = max(0.0, float(spec.get("delay_s") or 0.0))
        self.jitter_s = max(0.0, float(spec.get("jitter_s") or 0.0))
        self.limit = max(0, int(spec.get("limit") or 0))
        self.draining = False


def load_config(path: str) -> dict[str, Any]:
    """Read and check the stage config; raise MptcplabError with one clear line."""
    try:
        with open(path) as fh:
            cfg = json.load(fh)
    except (OSError, ValueError) as exc:
        raise MptcplabError(f"delay stage config {path}: {exc}") from None
    queues = cfg.get("queues")
    if not isinstance(queues, list):
        raise MptcplabError(f"delay stage config {path}: 'queues' must be a list")
    seen = set()
    for q in queues:
        num = q.get("num") if isinstance(q, dict) else None
        if not isinstance(num, int) or not 0 <= num <= 65535 or num in seen:
            raise MptcplabError(f"delay stage config {path}: bad or duplicate queue number {num!r}")
        seen.add(num)
    return cfg


def in_named_netns() -> bool:
    """True when this process's network namespace is one pinned under /run/netns (a lab
    node or a test namespace), never the host's own."""
    try:
        mine = os.stat("/proc/thread-self/ns/net")
    except OSError:
        return False
    for name in netns.list_names():
        try:
            st = os.stat(netns.path(name))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
            return True
    return False


class DelayStage:
    """The event loop: receive, schedule, release in batches; reload on SIGHUP."""

    def __init__(self, config_path: str, maxlen: int = 65536) -> None:
        self.config_path = config_path
        self.maxlen = maxlen
        self.queues: dict[int, QueueState] = {}
        self.sock = nfqueue.NfQueueSocket()
        self.stats_path: str | None = None
        self.stats_interval = 0.5
        self.rng = random.Random()
        self.flags: set[str] = set()
        self.started = time.monotonic()
        # how late each release batch left (now - due time of its first packet), recent ones
        self.lateness: deque[float] = deque(maxlen=4096)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.reload()

    # -- configuration -------------------------------------------------------------
    def reload(self) -> None:
        cfg = load_config(self.config_path)
        self.stats_path = cfg.get("stats_path") or None
        self.stats_interval = float(cfg.get("stats_interval_s") or 0.5)
        if cfg.get("seed") is not None:
            self.rng.seed(cfg["seed"])
        wanted = {q["num"]: q for q in cfg["queues"]}
        for num, spec in wanted.items():
            st = self.queues.get(num)
            if st is None:
                st = QueueState(num)
                self.sock.bind(nfqueue.QueueConfig(num, maxlen=self.maxlen))
                self.queues[num] = st
            st.settings(spec)
        for num, st in list(self.queues.items()):
            if num not in wanted:
                st.draining = True  # keep serving until empty, then unbind
        self._unbind_drained()

    # -- signals -------------------------------------------------------------------
    def install_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig, flag in ((signal.SIGHUP, "reload"), (signal.SIGUSR1, "stats"),
                          (signal.SIGTERM, "stop"), (signal.SIGINT, "stop")):
            signal.signal(sig, lambda _s, _f, flag=flag: self.flags.add(flag))

    def _handle_flags(self) -> bool:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass
        flags, self.flags = self.flags, set()
        if "reload" in flags:
            try:
                self.reload()
            except MptcplabError as exc:
                print(f"delaystage: reload ignored: {exc}", file=sys.stderr, flush=True)
        if "stats" in flags:
            self.write_stats()
        return "stop" in flags

    # -- the loop ------------------------------------------------------------------
    def run(self) -> None:
        sock = self.sock
        fd = sock.fileno()
        wake = self._wake_r
        queues = self.queues
        monotonic = time.monotonic
        uniform = self.rng.uniform
        pkts: list[tuple[int, int, int]] = []
        next_stats = monotonic() + self.stats_interval
        while True:
            now = monotonic()
            deadline = next_stats
            for st in queues.values():
                if st.held and st.held[0][0] < deadline:
                    deadline = st.held[0][0]
            timeout = deadline - now
            if timeout > 0:
                select.select([fd, wake], [], [], timeout)
            if self.flags and self._handle_flags():
                break
            pkts.clear()
            sock.recv_packets(pkts)
            now = monotonic()
            for qnum, pid, length in pkts:
                st = queues.get(qnum)
                if st is None:  # not ours any more: let it pass
                    sock.accept_upto(qnum, pid)
                    continue
                if st.last_id >= 0 and pid > st.last_id + 1:
                    st.id_gaps += pid - st.last_id - 1
                st.last_id = pid
                if st.limit and len(st.held) >= st.limit:
                    st.drops += 1
                    sock.drop(qnum, pid)
                    continue
                st.packets += 1
                st.bytes += length
                jitter = st.jitter_s
                release = now + st.delay_s + (uniform(-jitter, jitter) if jitter else 0.0)
                if release < st.last_release:
                    release = st.last_release
                st.last_release = release
                st.held.append((release, pid))
                if len(st.held) > st.max_held:
                    st.max_held = len(st.held)
            self._release(monotonic())
            if now >= next_stats:
                self.write_stats()
                next_stats = now + self.stats_interval
                self._unbind_drained()
        self.shutdown()

    def _release(self, now: float) -> None:
        for st in self.queues.values():
            held = st.held
            if not held or held[0][0] > now:
                continue
            self.lateness.append(now - held[0][0])
            last = -1
            popleft = held.popleft
            while held and held[0][0] <= now:
                last = popleft()[1]
            self.sock.accept_upto(st.num, last)

    def _unbind_drained(self) -> None:
        for num in [n for n, st in self.queues.items() if st.draining and not st.held]:
            self.sock.unbind(num)
            del self.queues[num]

    def shutdown(self) -> None:
        """Release everything still held (no packet is lost on exit), unbind, final stats."""
        for st in self.queues.values():
            if st.held:
                self.sock.accept_upto(st.num, st.held[-1][1])
                st.held.clear()
        self.write_stats()
        self.sock.close()

    # -- stats ---------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        kernel = nfqueue.proc_stats()
        late = sorted(self.lateness)
        return {
            "release_late_us": {
                "median": round(late[len(late) // 2] * 1e6, 1) if late else None,
                "p99": round(late[int(len(late) * 0.99)] * 1e6, 1) if late else None,
                "batches": len(late),
            },
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started, 3),
            "cpu_s": round(sum(os.times()[:2]), 3),
            "queues": [
                {
                    "num": st.num, "name": st.name, "delay_s": st.delay_s, "jitter_s": st.jitter_s,
                    "limit": st.limit, "packets": st.packets, "bytes": st.bytes,
                    "held": len(st.held), "max_held": st.max_held, "drops": st.drops,
                    "id_gaps": st.id_gaps, "kernel": kernel.get(st.num, {}),
                }
                for st in self.queues.values()
            ],
        }

    def write_stats(self) -> None:
        if not self.stats_path:
            return
        tmp = f"{self.stats_path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump(self.stats(), fh)
        os.replace(tmp, self.stats_path)


def stage_argv(config_path: str, rt_priority: int = 10, cpu: int | None = None) -> list[str]:
    """The command that starts a stage; wrap it with mptcplab.kernel.netns.argv(ns, ...).

    SCHED_FIFO priority 10 by default: the stage sleeps between releases, and the
    priority keeps releases on time (p99 under 0.2 ms) when traffic saturates the CPUs.
    """
    argv = [sys.executable, "-m", "mptcplab.lab.delaystage", "--config", config_path]
    if rt_priority:
        argv += ["--rt", str(rt_priority)]
    if cpu is not None:
        argv += ["--cpu", str(cpu)]
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mptcplab.lab.delaystage", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="JSON config file (re-read on SIGHUP)")
    parser.add_argument("--maxlen", type=int, default=65536, help="kernel queue length per queue")
    parser.add_argument("--cpu", type=int, default=None, help="pin the stage to this CPU")
    parser.add_argument("--rt", type=int, default=0, metavar="PRIO",
                        help="run under SCHED_FIFO with this priority (1-99): releases stay on time "
                             "when the CPUs are busy with the traffic itself")
    parser.add_argument("--allow-any-netns", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not in_named_netns() and not args.allow_any_netns:
        print("delaystage: refusing to run outside a named lab namespace (/run/netns); "
              "start it with mptcplab.kernel.netns.argv(ns, ...)", file=sys.stderr)
        return 2
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    if args.rt:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.rt))
        except OSError as exc:
            print(f"delaystage: SCHED_FIFO refused ({exc.strerror}); running normally", file=sys.stderr)
    try:
        stage = DelayStage(args.config, maxlen=args.maxlen)
    except MptcplabError as exc:
        print(f"delaystage: {exc}", file=sys.stderr)
        return 2
    stage.install_signals()
    stage.write_stats()
    stage.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
