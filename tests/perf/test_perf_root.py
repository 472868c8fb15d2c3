"""Real MPTCP transfers between two namespaces joined by two veth pairs.

Every assertion reads a fact the kernel reports: subflows from MPTCP_FULL_INFO, MPTcpExt
counters, the interfaces' own byte counters, path-manager events.
"""

from __future__ import annotations

import pytest

from mptcplab.workloads.perf import Server, parse_subflow_at, run_client
from mptcplab.workloads.perf.lab import ServerProcess

from .netsetup import link_stats, tc, two_paths

pytestmark = [pytest.mark.root]
PORT = 5201
CC = "cubic"  # this kernel's default (bbr) stalls MPTCP on veth at random (see docs/perf.md)


def _client_if_stats(net):  # noqa: ANN001, ANN202
    return {a: link_stats(*net.iface_of(a)) for a in net.client_addrs}


def _client_addr(sf: dict) -> str:
    """The client-side address of a subflow: it names the path (c1 or c2) it took."""
    return sf["local"][0] if sf["local"][0].startswith("10.0.") and sf["local"][0].endswith(".1") else sf["remote"][0]


def _assert_matches_interfaces(net, result, before, after, direction: str) -> None:  # noqa: ANN001
    counter = "tx_bytes" if direction == "c2s" else "rx_bytes"
    subflows = result.subflows(direction)
    assert {_client_addr(sf) for sf in subflows} == set(net.client_addrs)
    for addr in net.client_addrs:
        perf_bytes = sum(sf["bytes_sent"] for sf in subflows if _client_addr(sf) == addr)
        wire = after[addr][counter] - before[addr][counter]
        assert perf_bytes > 0.05 * sum(sf["bytes_sent"] for sf in subflows), f"path {addr} carried little data"
        assert abs(wire - perf_bytes) <= 0.02 * wire, (addr, wire, perf_bytes)


@pytest.mark.slow
def test_upload_two_subflows_agree_with_interface_counters(netns_factory) -> None:  # noqa: ANN001
    net = two_paths(netns_factory)
    before = _client_if_stats(net)
    with Server(port=PORT, netns=net.server):
        r = run_client(net.server_addrs[0], PORT, nbytes=384 << 20, netns=net.client, congestion=CC)
    after = _client_if_stats(net)
    assert r.ok, r.problems
    assert r.streams[0]["mptcp"] is True
    subflows = r.subflows("c2s")
    assert len(subflows) == 2
    _assert_matches_interfaces(net, r, before, after, "c2s")
    # both ends counted the same bytes and the same CRC
    s = r.streams[0]
    assert s["sender_end"]["bytes"] == s["receiver_end"]["bytes"] == 384 << 20
    assert s["sender_end"]["crc32"] == s["receiver_end"]["crc32"]
    assert r.data["server"]["received_bytes"] == 384 << 20
    # the join as the counters saw it, on both sides
    cc, sc = r.data["counters"]["client"], r.data["counters"]["server"]
    assert cc.get("MPCapableSYNTX") == 1 and cc.get("MPJoinSynAckRx") == 1
    assert sc.get("MPCapableSYNRX") == 1 and sc.get("MPJoinSynRx") == 1 and sc.get("MPJoinAckRx") == 1
    # the sampler saw the subflows over time
    assert all(len(sf["series"]["t"]) >= 2 for sf in subflows)
    assert r.data["intervals"] and r.data["intervals"][0]["streams"][0]["subflows"]


@pytest.mark.slow
def test_download_and_bidir(netns_factory) -> None:  # noqa: ANN001
    net = two_paths(netns_factory)
    with Server(port=PORT, netns=net.server):
        before = _client_if_stats(net)
        r = run_client(net.server_addrs[0], PORT, nbytes=256 << 20, mode="download", netns=net.client,
                       congestion=CC)
        after = _client_if_stats(net)
        assert r.ok, r.problems
        assert r.streams[0]["sender"] == "server" and len(r.subflows("s2c")) == 2
        _assert_matches_interfaces(net, r, before, after, "s2c")
        b = run_client(net.server_addrs[0], PORT, duration=1.5, mode="bidir", streams=2, netns=net.client,
                       congestion=CC)
    assert b.ok, b.problems
    assert sorted(s["key"] for s in b.streams) == ["c2s/0", "c2s/1", "s2c/0", "s2c/1"]
    for s in b.streams:
        assert s["receiver_end"]["bytes"] > 0 and s["mptcp"] is True
        assert len(s["subflows"]) == 2, s["key"]
    assert b.data["totals"]["c2s"]["bytes_received"] > 0 and b.data["totals"]["s2c"]["bytes_received"] > 0


def test_tcp_baseline(netns_factory) -> None:  # noqa: ANN001
    net = two_paths(netns_factory)
    with Server(port=PORT, netns=net.server, tcp=True):
        r = run_client(net.server_addrs[0], PORT, nbytes=64 << 20, tcp=True, netns=net.client)
    assert r.ok, r.problems
    s = r.streams[0]
    assert s["mptcp"] is False
    assert len(s["subflows"]) == 1 and s["subflows"][0]["bytes_sent"] >= 64 << 20
    assert "MPCapableSYNTX" not in r.data["counters"]["client"]
    assert r.data["meta"]["protocol"] == "tcp"


def test_server_child_process_and_rate_limit(netns_factory) -> None:  # noqa: ANN001
    net = two_paths(netns_factory)
    srv = ServerProcess(net.server, port=PORT)
    srv.start()
    try:
        r = run_client(net.server_addrs[0], PORT, duration=2, rate_bps=40e6, netns=net.client, congestion=CC)
    finally:
        code = srv.stop()
    assert code == 0, srv.output
    assert r.ok, r.problems
    assert any("data verified" in line for line in srv.output), srv.output
    bps = r.bits_per_second("c2s")
    assert 0.8 * 40e6 <= bps <= 1.1 * 40e6, bps


def _shape(net, rates_mbit: tuple[int, int]) -> None:  # noqa: ANN001
    for i, rate in enumerate(rates_mbit):
        for ns, dev in ((net.client, net.client_ifs[i]), (net.server, net.server_ifs[i])):
            tc(ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", f"{rate}mbit", "burst", "15kb",
               "latency", "25ms")


@pytest.mark.slow
@pytest.mark.parametrize("rates", [(10, 10), (15, 5)])
def test_simult_flows_like(netns_factory, rates: tuple[int, int]) -> None:  # noqa: ANN001
    """16 MiB each way over two shaped links within the kernel selftest's time bound.

    Transfer time on shaped links is timing-sensitive (about 1 run in 8 of (15,5) misses
    the bound here): a second attempt is allowed for the time only; every attempt must
    move and verify all data over both subflows.
    """
    net = two_paths(netns_factory)
    _shape(net, rates)
    size = 16 << 20
    bound = size * 8 * 10 / (sum(rates) * 1e6 * 9) + 0.45
    times = []
    with Server(port=PORT, netns=net.server):
        for _attempt in range(2):
            r = run_client(net.server_addrs[0], PORT, nbytes=size, mode="bidir", netns=net.client,
                           congestion=CC)
            assert r.ok, r.problems
            for s in r.streams:
                assert s["receiver_end"]["bytes"] == size
                assert len(s["subflows"]) == 2 and all(sf["bytes_sent"] > 0 for sf in s["subflows"])
            times.append(max(s["receiver_end"]["seconds"] for s in r.streams))
            if times[-1] <= bound:
                break
    assert min(times) <= bound, f"transfer took {times} s, bound {bound:.2f} s"


@pytest.mark.slow
def test_subflow_at_userspace_pm(netns_factory) -> None:  # noqa: ANN001
    net = two_paths(netns_factory, userspace_client=True)
    actions = [parse_subflow_at("0.5s:add:10.0.2.1", 0), parse_subflow_at("1.5s:del:10.0.2.1", 1)]
    with Server(port=PORT, netns=net.server):
        r = run_client(net.server_addrs[0], PORT, duration=2.5, netns=net.client, congestion=CC,
                       subflow_at=actions)
    assert r.ok, r.problems
    assert [res["ok"] for a in r.data["schedule"] for res in a["results"]] == [True, True], r.data["schedule"]
    subflows = r.subflows("c2s")
    extra = [sf for sf in subflows if sf["local"][0] == "10.0.2.1"]
    assert len(subflows) == 2 and len(extra) == 1
    sf = extra[0]
    assert sf["bytes_sent"] > 0
    assert sf["created"] is not None and 0.4 <= sf["created"] <= 1.0, sf["created"]
    assert sf["closed"] is not None and 1.4 <= sf["closed"] <= 2.0, sf["closed"]
    assert r.data["counters"]["server"].get("MPJoinSynRx") == 1
    kinds = [e["kind"] for e in r.data["events"]["client"]]
    assert "sf_established" in kinds and "sf_closed" in kinds


