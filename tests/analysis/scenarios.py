"""Traffic scenarios that put every MPTCP signal on the wire, captured per interface.

Each function takes the client and server namespace names (already created, empty)
and an output directory, and returns the pcap paths it wrote.
"""

from __future__ import annotations

import time

from . import nslab


def events(c: str, s: str, outdir: str) -> list[str]:
    """Joins, ADD_ADDR, MP_PRIO, REMOVE_ADDR, MP_FASTCLOSE/MP_TCPRST, fallback, plain TCP.

    Client endpoint 10.0.2.1 (subflow) makes a join to the server's first address;
    server endpoint 10.0.2.2 (signal) makes ADD_ADDR and a second join. During the
    transfer the client marks its endpoint backup (MP_PRIO), the server deletes its
    signal endpoint (REMOVE_ADDR), and the client aborts the socket (MP_FASTCLOSE).
    A plain TCP client and an MPTCP client to a plain TCP listener (fallback) follow.
    """
    nslab.build(c, s)
    nslab.limits(c)
    nslab.limits(s)
    nslab.ip(c, "mptcp", "endpoint", "add", "10.0.2.1", "dev", "e1", "id", "5", "subflow")
    nslab.ip(s, "mptcp", "endpoint", "add", "10.0.2.2", "dev", "e1", "id", "7", "signal")
    srv = nslab.listener(s, "0.0.0.0", 5001)  # any address: joins to 10.0.2.2 are accepted
    plain = nslab.listener(s, "10.0.1.2", 5002, mptcp=False)
    cap = nslab.Capture(c, ["e0", "e1", "any"], outdir, "events")
    try:
        t = nslab.sink(srv, conns=2)
        tp = nslab.sink(plain, conns=1)
        sock = nslab.connect(c, "10.0.1.2", 5001)
        done = set()

        def step(el: float) -> None:
            if el > 0.5 and "prio" not in done:
                done.add("prio")
                nslab.ip(c, "mptcp", "endpoint", "change", "id", "5", "backup")
            if el > 0.9 and "rm" not in done:
                done.add("rm")
                nslab.ip(s, "mptcp", "endpoint", "del", "id", "7")

        nslab.send_for(sock, 1.4, between=step)
        nslab.abort(sock)
        t2 = nslab.connect(c, "10.0.1.2", 5001, mptcp=False)
        nslab.send_for(t2, 0.1)
        t2.close()
        fb = nslab.connect(c, "10.0.1.2", 5002, mptcp=True)
        nslab.send_for(fb, 0.1)
        fb.close()
        t.join(5)
        tp.join(5)
    finally:
        srv.close()
        plain.close()
        files = cap.stop()
    return files


def reinject(c: str, s: str, outdir: str, size: int = 600_000) -> list[str]:
    """Bulk transfer over two shaped subflows; one path is blackholed mid-transfer,
    so the data in flight on it is reinjected on the other subflow."""
    nslab.build(c, s)
    nslab.limits(c)
    nslab.limits(s)
    nslab.ip(c, "mptcp", "endpoint", "add", "10.0.2.1", "dev", "e1", "subflow")
    for i in (0, 1):
        nslab.run(c, "tc", "qdisc", "add", "dev", f"e{i}", "root", "tbf", "rate", "16mbit",
                  "burst", "16kb", "latency", "100ms")
    srv = nslab.listener(s, "10.0.1.2", 5001)
    cap = nslab.Capture(c, ["any"], outdir, "reinject")
    try:
        t = nslab.sink(srv)
        sock = nslab.connect(c, "10.0.1.2", 5001)
        time.sleep(0.2)  # let the join happen
        blocker = nslab.in_ns(c, _block_later, s)
        sock.sendall(b"y" * size)
        blocker.join()
        sock.close()
        t.join(15)
    finally:
        srv.close()
        files = cap.stop()
    return files


def _block_later(s: str) -> None:
    time.sleep(0.08)
    nslab.run(s, "nft", "add", "table", "inet", "blk")
    nslab.run(s, "nft", "add", "chain", "inet", "blk", "in",
              "{ type filter hook input priority 0 ; }")
    nslab.run(s, "nft", "add", "rule", "inet", "blk", "in", "iifname", "e1", "drop")


def ipv6(c: str, s: str, outdir: str) -> list[str]:
    """An MPTCP connection over IPv6, a join to the address the server announces."""
    nslab.build(c, s)
    nslab.limits(c)
    nslab.limits(s)
    nslab.ip(s, "mptcp", "endpoint", "add", "dead:2::2", "dev", "e1", "signal")
    srv = nslab.listener(s, "::", 5001)
    cap = nslab.Capture(c, ["e0", "e1"], outdir, "ipv6")
    try:
        t = nslab.sink(srv)
        sock = nslab.connect(c, "dead:1::2", 5001)
        nslab.send_for(sock, 0.5)
        sock.close()
        t.join(5)
    finally:
        srv.close()
        files = cap.stop()
    return files
