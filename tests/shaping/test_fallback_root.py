"""The fallback backend on this (netem-less) kernel: two namespaces, one veth pair.

Every check reads what the kernel reports: interface byte counters, ICMP echo times,
datagrams that arrived, bytes of a transfer compared by hash.
"""

from __future__ import annotations

import hashlib
import math
import socket
import statistics
import threading
import time

import pytest
from shaping_helpers import B_ADDR, Pinger, Stage, link_stats, run, sh, veth_pair

from mptcplab.kernel import netns
from mptcplab.plan.shaping import (
    Impairment,
    ifb_name,
    plan,
    plan_link,
    plan_link_change,
    stage_config,
)

pytestmark = [pytest.mark.root]


@pytest.fixture
def pair(netns_factory):
    a, b = netns_factory("a"), netns_factory("b")
    veth_pair(a, b)
    return a, b


def _goodput_and_tx(a: str, b: str, seconds: float, warmup: float,
                    counter: tuple[str, str] | None = None) -> tuple[float, float]:
    """TCP a->b for WARMUP+SECONDS; returns (receiver goodput, tx rate of COUNTER's interface,
    default a's eth0) in bit/s over the steady window after WARMUP."""
    ns, dev = counter or (a, "eth0")
    with netns.enter(b):
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind((B_ADDR, 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    with netns.enter(a):
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stop = threading.Event()

    def send() -> None:
        cli.connect((B_ADDR, port))
        chunk = b"\0" * 65536
        try:
            while not stop.is_set():
                cli.send(chunk)
        except OSError:
            pass

    t = threading.Thread(target=send, daemon=True)
    t.start()
    conn, _ = srv.accept()
    conn.settimeout(2)
    received = 0
    start = time.monotonic()
    marks: dict[str, tuple[float, int, int]] = {}
    while True:
        now = time.monotonic()
        if "start" not in marks and now - start >= warmup:
            marks["start"] = (now, received, link_stats(ns, dev)["tx"]["bytes"])
        if now - start >= warmup + seconds:
            marks["end"] = (now, received, link_stats(ns, dev)["tx"]["bytes"])
            break
        received += len(conn.recv(1 << 20))
    stop.set()
    cli.close()
    conn.close()
    srv.close()
    t.join(2)
    (t0, r0, x0), (t1, r1, x1) = marks["start"], marks["end"]
    return (r1 - r0) * 8 / (t1 - t0), (x1 - x0) * 8 / (t1 - t0)


@pytest.mark.slow
@pytest.mark.parametrize("rate", [10_000_000, 50_000_000])
def test_rate(pair, rate):
    a, b = pair
    p = plan_link("eth0", "eth0", Impairment(rate_bps=rate), "fallback")
    run(p.commands, a, b)
    goodput, tx = _goodput_and_tx(a, b, seconds=2.5, warmup=1.0)
    # tx counts Ethernet frames, like tbf: the wire rate itself, within 3 %
    assert abs(tx - rate) / rate < 0.03, (tx, rate)
    assert goodput >= 0.90 * rate, (goodput, rate)
    run(p.undo, a, b)
    assert "tbf" not in sh(a, ["tc", "qdisc", "show", "dev", "eth0"])


@pytest.mark.slow
def test_ingress_rate_through_ifb(pair):
    a, b = pair
    rate = 20_000_000
    p = plan("eth0", Impairment(rate_bps=rate), "fallback", "ingress")
    run(p.commands, b)
    # the ifb transmits what tbf let through, segment by segment (a's veth counter sees
    # GSO super-packets with one header each, so it would read ~4 % low)
    goodput, tx = _goodput_and_tx(a, b, seconds=2.0, warmup=1.0, counter=(b, ifb_name("eth0")))
    assert abs(tx - rate) / rate < 0.03, (tx, rate)
    assert goodput >= 0.90 * rate, (goodput, rate)
    run(p.undo, b)
    assert ifb_name("eth0") not in sh(b, ["ip", "link"])


@pytest.mark.slow
@pytest.mark.parametrize("delay_ms", [10, 50])
def test_delay(pair, tmp_path, delay_ms):
    a, b = pair
    p = plan_link("eth0", "eth0", Impairment(delay_s=delay_ms / 1e3), "fallback", queue_num=7)
    stage = Stage(b, tmp_path, stage_config(p.stage_queues)["queues"])
    pinger = Pinger(a, B_ADDR)
    try:
        base = statistics.median(pinger.series(10, 0.005))
        run(p.commands, a, b)
        rtts = pinger.series(20, 0.01)
        assert len(rtts) == 20
        median = statistics.median(rtts)
        assert abs(median - base - delay_ms / 1e3) < 1e-3, (median, base)
        st = stage.stats()["queues"][0]
        assert st["packets"] >= 20 and st["id_gaps"] == 0
        run(p.undo, a, b)
        after = statistics.median(pinger.series(10, 0.005))
        assert after < base + 1e-3
    finally:
        pinger.close()
        assert stage.stop() == 0


@pytest.mark.slow
def test_jitter_spread(pair, tmp_path):
    a, b = pair
    delay, jitter = 0.02, 0.005
    p = plan_link("eth0", "eth0", Impairment(delay_s=delay, jitter_s=jitter), "fallback", queue_num=1)
    stage = Stage(b, tmp_path, stage_config(p.stage_queues)["queues"])
    run(p.commands, a, b)
    pinger = Pinger(a, B_ADDR)
    try:
        # echoes 12 ms apart never catch up with each other: each delay is delay +- U(jitter)
        rtts = pinger.series(40, 0.012)
        assert len(rtts) == 40
        spread = statistics.pstdev(rtts)
        expected = 2 * jitter / math.sqrt(12)  # uniform on [delay - j, delay + j]
        assert 0.6 * expected < spread < 1.4 * expected, (spread, expected)
        assert min(rtts) >= delay - jitter - 0.5e-3
        assert max(rtts) <= delay + jitter + 1.5e-3
        # no jitter: the spread collapses
        stage.reconfigure([{**p.stage_queues[0].to_dict(), "jitter_s": 0.0}])
        time.sleep(0.1)
        steady = pinger.series(30, 0.005)
        deciles = statistics.quantiles(steady, n=10)
        assert deciles[-1] - deciles[0] < 0.5e-3, deciles
    finally:
        pinger.close()
        stage.stop()


def _udp_loss(a: str, b: str, count: int) -> tuple[int, int]:
    """COUNT datagrams a->b; returns (arrived, refused by netfilter at the sender)."""
    with netns.enter(b):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
    rx.bind((B_ADDR, 0))
    with netns.enter(a):
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dst = rx.getsockname()
    refused = 0
    for i in range(count):
        try:
            tx.sendto(i.to_bytes(4, "big"), dst)
        except PermissionError:  # NF_DROP on the local output path
            refused += 1
    rx.setblocking(False)
    seen = set()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            seen.add(int.from_bytes(rx.recv(64), "big"))
        except BlockingIOError:
            if len(seen) + refused >= count:
                break
            time.sleep(0.01)
    rx.close()
    tx.close()
    return len(seen), refused


@pytest.mark.slow
@pytest.mark.parametrize("loss", [0.01, 0.05])
def test_loss(pair, loss):
    a, b = pair
    p = plan_link("eth0", "eth0", Impairment(loss=loss), "fallback")
    run(p.commands, a, b)
    n = 25_000
    arrived, refused = _udp_loss(a, b, n)
    assert arrived + refused == n  # every datagram either passed or was dropped by our rule
    sigma = math.sqrt(n * loss * (1 - loss))
    assert abs(refused - n * loss) <= 4 * sigma, (refused, n * loss, sigma)
    run(p.undo, a, b)
    arrived, refused = _udp_loss(a, b, 2000)
    assert (arrived, refused) == (2000, 0)


@pytest.mark.slow
def test_runtime_change_under_mptcp_transfer(pair, tmp_path):
    a, b = pair
    old = Impairment(delay_s=0.01)
    new = Impairment(delay_s=0.08, loss=0.05)
    p = plan_link("eth0", "eth0", old, "fallback", queue_num=3)
    stage = Stage(b, tmp_path, stage_config(p.stage_queues)["queues"])
    run(p.commands, a, b)

    payload = bytes(range(256)) * 4096 * 2  # 2 MiB
    with netns.enter(b):
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_MPTCP)
    srv.bind((B_ADDR, 0))
    srv.listen(1)
    with netns.enter(a):
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_MPTCP)
    result: dict[str, bytes] = {}

    def receive() -> None:
        conn, _ = srv.accept()
        h = hashlib.sha256()
        while chunk := conn.recv(1 << 16):
            h.update(chunk)
        result["digest"] = h.digest()
        conn.close()

    def send() -> None:
        cli.connect(srv.getsockname())
        for off in range(0, len(payload), 16384):  # paced: the transfer spans the change
            cli.sendall(payload[off:off + 16384])
            time.sleep(0.004)
        cli.shutdown(socket.SHUT_WR)

    rx = threading.Thread(target=receive, daemon=True)
    txt = threading.Thread(target=send, daemon=True)
    rx.start()
    txt.start()
    pinger = Pinger(a, B_ADDR)
    try:
        time.sleep(0.25)
        change = plan_link_change("eth0", "eth0", old, new, "fallback", queue_num=3)
        t0 = time.monotonic()
        run(change.commands, a, b)
        stage.reconfigure(stage_config(change.stage_queues)["queues"])
        applied = time.monotonic() - t0
        probes = [pinger.send() for _ in range(60) if time.sleep(0.005) is None]
        time.sleep(0.3)
        slow = [t - t0 for seq, t in probes if pinger.rtt.get(seq, 0) >= 0.079]
        assert slow and min(slow) < 0.1, (applied, slow[:3])
        txt.join(30)
        rx.join(30)
        assert not txt.is_alive() and not rx.is_alive()
        assert result["digest"] == hashlib.sha256(payload).digest()
        assert cli.getsockopt(socket.SOL_TCP, 43) == 1  # TCP_IS_MPTCP: no fallback to TCP
        nft = sh(a, ["nft", "list", "ruleset"])
        assert "counter packets 0 " not in nft  # the 5 % loss rule did drop packets
    finally:
        pinger.close()
        cli.close()
        srv.close()
        stage.stop()
