"""Our analysis against Wireshark's MPTCP dissector, on committed and fresh captures."""

from __future__ import annotations

import glob
import os

import pytest

from mptcplab.analysis import analyze
from mptcplab.analysis.options import key_idsn, key_token

from . import scenarios
from .tshark_ref import available, ours, reference, tshark_fields

PCAPS = os.path.join(os.path.dirname(__file__), "..", "data", "pcaps")
COMMITTED = sorted(glob.glob(os.path.join(PCAPS, "*.pcap")))

pytestmark = pytest.mark.skipif(not available(), reason="tshark not installed")


def compare(path: str) -> None:
    ref = reference(path)
    me = ours(analyze([path]))
    assert me["counts"] == ref["counts"]
    assert me["streams"] == ref["streams"]
    assert me["mptcp"] == ref["mptcp"]
    # Wireshark maps a packet with the *oldest* mapping that covers its first byte; when
    # a mapping's last byte is the DATA_FIN and a resent packet starts a new mapping on
    # that subflow sequence number, we use the packet's own mapping. Only such packets
    # may differ: they carry a mapping starting at their own sequence number, and
    # Wireshark's DSN for them is not that mapping's DSN.
    diff = ref["reinjections"] ^ me["reinjections"]
    if diff:
        rows = {int(r[0]): r[1:] for r in tshark_fields(path, [
            "frame.number", "tcp.seq", "mptcp.rawdsn64", "tcp.options.mptcp.rawdataseqno",
            "tcp.options.mptcp.subflowseqno"])}
        for frame in diff:
            seq, used, own, ssn = rows[frame]
            assert own and ssn == seq and used != own, (frame, rows[frame])


@pytest.mark.parametrize("path", COMMITTED, ids=os.path.basename)
def test_committed_capture_matches_tshark(path: str) -> None:
    compare(path)


def test_committed_captures_are_small() -> None:
    assert COMMITTED
    for path in COMMITTED:
        assert os.path.getsize(path) < 200_000, path


def test_tokens_and_idsns_match_tshark() -> None:
    """Token/IDSN from the keys (SHA-256) against Wireshark's expected_token/expected_idsn."""
    path = os.path.join(PCAPS, "events-any.pcap")
    rows = tshark_fields(path, ["tcp.options.mptcp.sendkey", "mptcp.expected_token",
                                "mptcp.expected_idsn"])
    checked = 0
    for key, token, idsn in rows:
        if key and token:
            k = int(key.split(",")[0], 0)
            assert key_token(k) == int(token.split(",")[0], 0)
            assert key_idsn(k) == int(idsn.split(",")[0], 0)
            checked += 1
    assert checked >= 2
    conn = analyze([path]).connections[0]
    assert conn.tokens == [key_token(conn.keys[0]), key_token(conn.keys[1])]


def test_reinjections_found_in_committed_capture() -> None:
    result = analyze([os.path.join(PCAPS, "reinject-any.pcap")])
    conn = result.connections[0]
    assert len(conn.subflows) == 2
    assert conn.reinjected_packets[0] > 0 and conn.reinjected_bytes[0] > 0
    assert {r["of_subflow"] for r in conn.reinjections} == {0, 1}


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.parametrize("name", ["events", "reinject", "ipv6"])
def test_fresh_capture_matches_tshark(netns_factory, tmp_path, name: str) -> None:
    """Make the traffic in new namespaces now, capture per interface, compare each pcap."""
    files = getattr(scenarios, name)(netns_factory("c"), netns_factory("s"), str(tmp_path))
    for path in files:
        compare(path)
    result = analyze(files)
    assert result.warnings == []
    if name == "events":
        present = {e["type"] for c in result.connections for e in c.events}
        assert {"ADD_ADDR", "REMOVE_ADDR", "MP_PRIO", "MP_FASTCLOSE", "MP_TCPRST",
                "FALLBACK"} <= present
        assert any(s.kind == "join" for c in result.connections for s in c.subflows)
        assert result.tcp_connections  # the plain TCP client
    if name == "reinject":
        assert sum(c.reinjected_packets[0] for c in result.connections) > 0
