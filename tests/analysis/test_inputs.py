"""Link types, file formats, merging of per-interface captures, damaged input."""

from __future__ import annotations

import os
import struct

import dpkt
import pytest

from mptcplab.analysis import analyze

from .tshark_ref import ours

PCAPS = os.path.join(os.path.dirname(__file__), "..", "data", "pcaps")
E0 = os.path.join(PCAPS, "events-e0.pcap")
E1 = os.path.join(PCAPS, "events-e1.pcap")
ANY = os.path.join(PCAPS, "events-any.pcap")


def frames(path: str) -> list[tuple[float, bytes]]:
    with open(path, "rb") as f:
        return list(dpkt.pcap.Reader(f))


def rewrite(src: str, dst: str, linktype: int, strip: int = 14, prefix=None, ng: bool = False) -> None:
    """Copy an Ethernet capture into another link type (or pcapng), frame by frame."""
    with open(dst, "wb") as f:
        w = (dpkt.pcapng.Writer if ng else dpkt.pcap.Writer)(f, linktype=linktype)
        for ts, buf in frames(src):
            body = buf[strip:]
            w.writepkt((prefix(buf) if prefix else b"") + body, ts=ts)


def sll(buf: bytes) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, buf[6:12], struct.unpack("!H", buf[12:14])[0])


def summary(paths) -> dict:
    r = analyze(paths)
    out = ours(r)
    out["events"] = sorted((e["type"], e["time"]) for c in r.connections for e in c.events)
    out["warnings"] = r.warnings
    return out


@pytest.mark.parametrize("kind", ["raw", "sll", "pcapng", "pcapng-raw"])
def test_link_types_and_formats_give_the_same_analysis(tmp_path, kind: str) -> None:
    dst = str(tmp_path / f"x.{kind}")
    if kind == "raw":
        rewrite(E0, dst, 101)
    elif kind == "sll":
        rewrite(E0, dst, 113, prefix=sll)
    elif kind == "pcapng":
        rewrite(E0, dst, 1, strip=0, ng=True)
    else:
        rewrite(E0, dst, 101, ng=True)
    ref = summary([E0])
    got = summary([dst])
    assert got == ref
    assert ref["mptcp"] and ref["events"]


def test_sll2_capture_is_read() -> None:
    r = analyze([ANY])
    assert r.inputs[0]["linktypes"] == ["linux cooked v2 (SLL2)"]
    assert r.connections and r.tcp_packets == r.packets


def test_per_interface_captures_merge_like_one_capture() -> None:
    """e0 + e1 hold the same packets as `any`; all three together de-duplicate to `any`."""
    one = summary([ANY])
    pair = analyze([E0, E1])
    assert pair.duplicates == 0
    triple = analyze([E0, E1, ANY])
    assert triple.duplicates == pair.tcp_packets
    for r in (pair, triple):
        got = ours(r)
        assert got["counts"] == one["counts"]
        assert sorted(map(tuple, got["streams"].values())) == sorted(map(tuple, one["streams"].values()))
        assert sorted(len(s) for s in got["mptcp"].values()) == sorted(len(s) for s in one["mptcp"].values())


def test_truncated_file_warns_with_packet_number_and_keeps_the_rest(tmp_path) -> None:
    with open(E0, "rb") as f:
        data = f.read()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])
    r = analyze([cut])
    assert r.connections
    assert any("truncated" in w["message"] and w["packet"] == r.packets + 1 for w in r.warnings)


def test_junk_file_is_a_warning(tmp_path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(os.urandom(1000))
    r = analyze([junk, E1])
    assert r.warnings[0]["file"] == 0 and "not a pcap" in r.warnings[0]["message"]
    assert r.connections  # the good file is still analysed


def _tcp_packet(opts: bytes, payload: bytes = b"") -> bytes:
    tcp = dpkt.tcp.TCP(sport=1000, dport=2000, seq=1, ack=1, flags=dpkt.tcp.TH_ACK, opts=opts,
                       off=5 + len(opts) // 4,
                       data=payload)
    ip = dpkt.ip.IP(src=b"\x0a\x00\x00\x01", dst=b"\x0a\x00\x00\x02", p=6, data=tcp)
    return bytes(ip)


def test_bad_option_lengths_warn_with_packet_numbers(tmp_path) -> None:
    path = tmp_path / "bad.pcap"
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, linktype=101)
        w.writepkt(_tcp_packet(b"\x1e\x07\x20\x04\x00\x00\x00\x01"), ts=1.0)  # DSS len 7
        w.writepkt(_tcp_packet(b"\x1e\x05\x00\x81\x00\x00\x00\x00"), ts=2.0)  # MP_CAPABLE len 5
        w.writepkt(_tcp_packet(b"\x1e\x30\x00\x00"), ts=3.0)  # option longer than the header
        w.writepkt(_tcp_packet(b"\x01\x01\x01\x01", b"hello"), ts=4.0)  # fine
    r = analyze([path])
    by_packet = {w["packet"]: w["message"] for w in r.warnings}
    assert "DSS" in by_packet[1] and "MP_CAPABLE" in by_packet[2] and "bad length" in by_packet[3]
    assert 4 not in by_packet
    assert r.tcp_packets == 4 and sum(r.streams[0].payload) == 5
    assert r.option_counts == {"DSS": 1, "MP_CAPABLE": 1}
