"""MPTCP socket-option parsing on synthetic bytes (no root, no kernel)."""

from __future__ import annotations

import socket
import struct

from mptcplab.kernel import sockopt

INFO_VALUES = (1, 2, 3, 8, 4, 5, 0b11, 0xDEADBEEF, 10, 9, 8, 2, 3, 1, 7, 100, 200, 300, 400, 2, 0, 11, 12, 13)


def _info_bytes() -> bytes:
    return struct.pack(sockopt.MPTCP_INFO_FORMAT, *INFO_VALUES)


def _sockaddr_in(addr: str, port: int) -> bytes:
    raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(addr)
    return raw.ljust(sockopt.SOCKADDR_STORAGE, b"\0")


def _sockaddr_in6(addr: str, port: int) -> bytes:
    raw = (struct.pack("=H", socket.AF_INET6) + struct.pack("!H", port) + b"\0" * 4
           + socket.inet_pton(socket.AF_INET6, addr))
    return raw.ljust(sockopt.SOCKADDR_STORAGE, b"\0")


def _tcp_info(state: int, rtt: int, cwnd: int, retrans: int, acked: int, sent: int, size: int = 280) -> bytes:
    buf = bytearray(size)
    buf[0] = state
    struct.pack_into("<I", buf, 68, rtt)
    struct.pack_into("<I", buf, 72, rtt // 2)
    struct.pack_into("<I", buf, 80, cwnd)
    struct.pack_into("<I", buf, 100, retrans)
    struct.pack_into("<Q", buf, 120, acked)
    struct.pack_into("<Q", buf, 128, 5)
    if size >= 208:
        struct.pack_into("<Q", buf, 200, sent)
    return bytes(buf)


def test_mptcp_info_layout_is_96_bytes() -> None:
    assert sockopt.MPTCP_INFO_SIZE == 96
    assert sockopt.FULL_INFO_HEADER.size == 40
    assert sockopt.SUBFLOW_INFO_SIZE == 264


def test_parse_mptcp_info_full() -> None:
    info = sockopt.parse_mptcp_info(_info_bytes())
    assert info.subflows == 1 and info.subflows_max == 8
    assert info.token == 0xDEADBEEF and info.fallback is True
    assert (info.write_seq, info.snd_una, info.rcv_nxt) == (10, 9, 8)
    assert info.bytes_sent == 200 and info.bytes_acked == 400
    assert info.subflows_total == 2 and info.last_ack_recv == 13


def test_parse_mptcp_info_short_reply_zeroes_the_rest() -> None:
    info = sockopt.parse_mptcp_info(_info_bytes()[:48])  # an older kernel's shorter struct
    assert info.token == 0xDEADBEEF and info.retransmits == 7
    assert info.bytes_retrans == 0 and info.bytes_acked == 0 and info.subflows_total == 0


def test_parse_sockaddr_v4_v6_mapped() -> None:
    assert sockopt.parse_sockaddr(_sockaddr_in("10.0.1.1", 5201)) == ("10.0.1.1", 5201)
    assert sockopt.parse_sockaddr(_sockaddr_in6("2001:db8::1", 443)) == ("2001:db8::1", 443)
    assert sockopt.parse_sockaddr(_sockaddr_in6("::ffff:10.0.2.1", 80)) == ("10.0.2.1", 80)
    assert sockopt.parse_sockaddr(b"") == ("", 0)


def test_parse_full_info_two_subflows() -> None:
    header = sockopt.FULL_INFO_HEADER.pack(280, 280, 264, 264, 2, 16, 0x1000, 0x2000) + _info_bytes()
    sf = b""
    for i, (laddr, raddr) in enumerate([("10.0.1.1", "10.0.1.2"), ("10.0.2.1", "10.0.1.2")]):
        sf += struct.pack("<I4x", i + 1) + _sockaddr_in(laddr, 40000 + i) + _sockaddr_in(raddr, 5201)
    ti = _tcp_info(1, 120, 10, 3, 1000, 1100) + _tcp_info(1, 300, 20, 0, 2000, 2000)
    full = sockopt.parse_full_info(header, sf, ti)
    assert full.info.token == 0xDEADBEEF
    assert [s.id for s in full.subflows] == [1, 2]
    a, b = full.subflows
    assert a.local == ("10.0.1.1", 40000) and a.remote == ("10.0.1.2", 5201)
    assert b.local == ("10.0.2.1", 40001)
    assert (a.state, a.rtt_us, a.rttvar_us, a.snd_cwnd, a.total_retrans) == ("ESTABLISHED", 120, 60, 10, 3)
    assert (a.bytes_acked, a.bytes_sent, a.bytes_received) == (1000, 1100, 5)
    assert b.bytes_sent == 2000 and b.key == "10.0.2.1:40001>10.0.1.2:5201"


def test_parse_full_info_uses_kernel_tcpinfo_size() -> None:
    # an older kernel fills only 200 bytes of each tcp_info: fields beyond read as 0
    header = sockopt.FULL_INFO_HEADER.pack(200, 280, 264, 264, 1, 16, 0, 0) + _info_bytes()
    sf = struct.pack("<I4x", 7) + _sockaddr_in("1.2.3.4", 1) + _sockaddr_in("5.6.7.8", 2)
    ti = _tcp_info(1, 5, 6, 0, 10, 999)
    full = sockopt.parse_full_info(header, sf, ti)
    assert full.subflows[0].id == 7 and full.subflows[0].bytes_sent == 0 and full.subflows[0].bytes_acked == 10


def test_parse_full_info_more_subflows_than_array() -> None:
    header = sockopt.FULL_INFO_HEADER.pack(280, 280, 264, 264, 5, 1, 0, 0) + _info_bytes()
    sf = struct.pack("<I4x", 1) + _sockaddr_in("1.2.3.4", 1) + _sockaddr_in("5.6.7.8", 2)
    full = sockopt.parse_full_info(header, sf, _tcp_info(1, 1, 1, 0, 1, 1))
    assert len(full.subflows) == 1


def test_fallback_arrays_joined_in_order() -> None:
    info = sockopt.parse_mptcp_info(_info_bytes())
    ti = _tcp_info(1, 10, 1, 0, 1, 1) + _tcp_info(4, 20, 2, 1, 2, 2)
    addrs = (_sockaddr_in("10.0.1.1", 1) + _sockaddr_in("10.0.1.2", 9)
             + _sockaddr_in6("2001:db8::1", 2) + _sockaddr_in6("2001:db8::2", 9))
    full = sockopt.parse_subflow_arrays(info, ti, 2, 280, addrs, 2, 256)
    assert [s.id for s in full.subflows] == [1, 2]
    assert full.subflows[1].local == ("2001:db8::1", 2) and full.subflows[1].state == "FIN_WAIT1"
    assert full.source == "tcpinfo+addrs"


def test_tcp_info_on_a_real_loopback_socket() -> None:
    srv = socket.create_server(("127.0.0.1", 0))
    cli = socket.create_connection(srv.getsockname())
    peer, _ = srv.accept()
    try:
        cli.sendall(b"x" * 5000)
        peer.recv(10000)
        sample = sockopt.tcp_info(cli)
        assert sample.state == "ESTABLISHED" and sample.local == cli.getsockname()
        assert sample.bytes_sent >= 5000 or sample.bytes_acked >= 5000
        assert sockopt.is_mptcp(cli) in (False, None)
        reader = sockopt.SubflowReader(cli)
        assert reader.read().source == "tcp_info"
    finally:
        for s in (cli, peer, srv):
            s.close()
