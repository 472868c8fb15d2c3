"""MPTCP socket options (MPTCP_INFO, MPTCP_FULL_INFO and older fallbacks), TCP_INFO, TCP_IS_MPTCP.

Python's socket.getsockopt cannot pass an input buffer, and MPTCP_FULL_INFO wants one
with user pointers in it, so these options go through ctypes' getsockopt. Parsing is
kept apart from the system calls (parse_* take bytes) so it is testable on synthetic
bytes. Older kernels return shorter structures: parse what came back, zero the rest.
Layouts: /work/shared/reference/mptcp-facts.md and the kernel's uapi linux/mptcp.h.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import socket
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

SOL_TCP = socket.IPPROTO_TCP
SOL_MPTCP = 284
MPTCP_INFO = 1
MPTCP_TCPINFO = 2
MPTCP_SUBFLOW_ADDRS = 3
MPTCP_FULL_INFO = 4
TCP_INFO = 11
TCP_IS_MPTCP = 43

MPTCP_INFO_FORMAT = "<6B2xIIQQQ3BxIQQQQBB2xIII"
MPTCP_INFO_SIZE = struct.calcsize(MPTCP_INFO_FORMAT)  # 96 on 6.18
FULL_INFO_HEADER = struct.Struct("<6IQQ")  # 40 bytes, then struct mptcp_info
SUBFLOW_DATA_HEADER = struct.Struct("<4I")  # struct mptcp_subflow_data, 16 bytes
SOCKADDR_STORAGE = 128
SUBFLOW_ADDRS_SIZE = 2 * SOCKADDR_STORAGE  # struct mptcp_subflow_addrs
SUBFLOW_INFO_SIZE = 8 + SUBFLOW_ADDRS_SIZE  # struct mptcp_subflow_info: u32 id, pad, addrs
TCP_INFO_USER_SIZE = 280  # what 6.18 fills; a larger buffer is fine, a smaller one truncates
MAX_SUBFLOWS = 16

# struct tcp_info offsets (linux/tcp.h)
_TI_STATE, _TI_RTT, _TI_RTTVAR, _TI_CWND = 0, 68, 72, 80
_TI_TOTAL_RETRANS, _TI_BYTES_ACKED, _TI_BYTES_RECEIVED, _TI_BYTES_SENT = 100, 120, 128, 200

TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.getsockopt.argtypes = [
    ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32),
]


class SockoptUnsupported(OSError):
    """The kernel does not know this option (older kernel, or not an MPTCP socket)."""


@dataclass
class MptcpInfo:
    """struct mptcp_info: the connection-level view of an MPTCP socket."""

    subflows: int = 0  # extra subflows, the initial one not counted
    add_addr_signal: int = 0
    add_addr_accepted: int = 0
    subflows_max: int = 0
    add_addr_signal_max: int = 0
    add_addr_accepted_max: int = 0
    flags: int = 0
    token: int = 0
    write_seq: int = 0
    snd_una: int = 0
    rcv_nxt: int = 0
    local_addr_used: int = 0
    local_addr_max: int = 0
    csum_enabled: int = 0
    retransmits: int = 0
    bytes_retrans: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    bytes_acked: int = 0
    subflows_total: int = 0
    endp_laminar_max: int = 0
    last_data_sent: int = 0
    last_data_recv: int = 0
    last_ack_recv: int = 0

    @property
    def fallback(self) -> bool:
        return bool(self.flags & 1)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fallback": self.fallback}


Endpoint = tuple[str, int]


@dataclass
class SubflowSample:
    """One subflow at one instant: its addresses and the sender-side TCP figures."""

    id: int
    local: Endpoint
    remote: Endpoint
    state: str = ""
    rtt_us: int = 0
    rttvar_us: int = 0
    snd_cwnd: int = 0
    total_retrans: int = 0
    bytes_acked: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0

    @property
    def key(self) -> str:
        """Stable name of the subflow within its connection: its 4-tuple."""
        return f"{fmt_endpoint(self.local)}>{fmt_endpoint(self.remote)}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["local"], d["remote"] = list(self.local), list(self.remote)
        return d


@dataclass
class FullInfo:
    """What MPTCP_FULL_INFO (or its fallbacks, or TCP_INFO for plain TCP) reported."""

    info: MptcpInfo
    subflows: list[SubflowSample] = field(default_factory=list)
    source: str = "full_info"  # full_info | tcpinfo+addrs | tcp_info


def fmt_endpoint(ep: Endpoint) -> str:
    addr, port = ep
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _padded(data: bytes, size: int) -> bytes:
    return data[:size].ljust(size, b"\0")


def parse_mptcp_info(data: bytes) -> MptcpInfo:
    """struct mptcp_info from however many bytes the kernel returned."""
    return MptcpInfo(*struct.unpack(MPTCP_INFO_FORMAT, _padded(data, MPTCP_INFO_SIZE)))


def parse_sockaddr(data: bytes) -> Endpoint:
    """(address, port) of a sockaddr_in/sockaddr_in6; IPv4-mapped IPv6 shown as IPv4."""
    data = _padded(data, SOCKADDR_STORAGE)
    family = struct.unpack_from("=H", data, 0)[0]
    port = struct.unpack_from("!H", data, 2)[0]
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, data[4:8]), port
    if family == socket.AF_INET6:
        addr = ipaddress.IPv6Address(data[8:24])
        mapped = addr.ipv4_mapped
        return (str(mapped) if mapped else str(addr)), port
    return "", 0


def parse_tcp_info(data: bytes, sf_id: int, local: Endpoint, remote: Endpoint) -> SubflowSample:
    """A SubflowSample from a struct tcp_info (missing tail fields read as 0)."""
    data = _padded(data, TCP_INFO_USER_SIZE)

    def u32(off: int) -> int:
        return struct.unpack_from("<I", data, off)[0]

    def u64(off: int) -> int:
        return struct.unpack_from("<Q", data, off)[0]

    return SubflowSample(
        id=sf_id, local=local, remote=remote, state=TCP_STATES.get(data[_TI_STATE], str(data[0])),
        rtt_us=u32(_TI_RTT), rttvar_us=u32(_TI_RTTVAR), snd_cwnd=u32(_TI_CWND),
        total_retrans=u32(_TI_TOTAL_RETRANS), bytes_acked=u64(_TI_BYTES_ACKED),
        bytes_received=u64(_TI_BYTES_RECEIVED), bytes_sent=u64(_TI_BYTES_SENT),
    )


def parse_full_info(header: bytes, sfinfo: bytes, tcpinfo: bytes) -> FullInfo:
    """Parse the three MPTCP_FULL_INFO buffers after the kernel filled them."""
    (size_ti_k, size_ti_u, size_sf_k, size_sf_u, num, size_arrays, _p1, _p2) = (
        FULL_INFO_HEADER.unpack_from(_padded(header, FULL_INFO_HEADER.size))
    )
    info = parse_mptcp_info(header[FULL_INFO_HEADER.size:])
    ti_stride = size_ti_u
    sf_stride = size_sf_u
    subflows = []
    for i in range(min(num, size_arrays)):
        sf = sfinfo[i * sf_stride:(i + 1) * sf_stride]
        if len(sf) < 8:
            break
        sf_id = struct.unpack_from("<I", sf, 0)[0]
        local = parse_sockaddr(sf[8:8 + SOCKADDR_STORAGE])
        remote = parse_sockaddr(sf[8 + SOCKADDR_STORAGE:8 + 2 * SOCKADDR_STORAGE])
        ti = tcpinfo[i * ti_stride:i * ti_stride + min(size_ti_k or ti_stride, ti_stride)]
        subflows.append(parse_tcp_info(ti, sf_id, local, remote))
    return FullInfo(info=info, subflows=subflows, source="full_info")


def _getsockopt(fd: int, level: int, opt: int, buf: ctypes.Array, length: int) -> int:
    """getsockopt with an in/out buffer; returns the length the kernel wrote."""
    optlen = ctypes.c_uint32(length)
    if _libc.getsockopt(fd, level, opt, ctypes.addressof(buf), ctypes.byref(optlen)) != 0:
        err = ctypes.get_errno()
        if err in (errno.EOPNOTSUPP, errno.ENOPROTOOPT, errno.EINVAL):
            raise SockoptUnsupported(err, os.strerror(err))
        raise OSError(err, os.strerror(err))
    return optlen.value


def _fd(sock: socket.socket | int) -> int:
    return sock if isinstance(sock, int) else sock.fileno()


def mptcp_info(sock: socket.socket | int) -> MptcpInfo:
    """MPTCP_INFO of an MPTCP socket (raises SockoptUnsupported on plain TCP / fallback)."""
    buf = ctypes.create_string_buffer(MPTCP_INFO_SIZE)
    n = _getsockopt(_fd(sock), SOL_MPTCP, MPTCP_INFO, buf, MPTCP_INFO_SIZE)
    return parse_mptcp_info(buf.raw[:n])


def mptcp_full_info(sock: socket.socket | int, max_subflows: int = MAX_SUBFLOWS) -> FullInfo:
    """MPTCP_FULL_INFO: connection info plus every subflow's addresses and tcp_info."""
    fd = _fd(sock)
    while True:
        header = ctypes.create_string_buffer(FULL_INFO_HEADER.size + MPTCP_INFO_SIZE)
        sfinfo = ctypes.create_string_buffer(max_subflows * SUBFLOW_INFO_SIZE)
        tcpinfo = ctypes.create_string_buffer(max_subflows * TCP_INFO_USER_SIZE)
        FULL_INFO_HEADER.pack_into(
            header, 0, 0, TCP_INFO_USER_SIZE, 0, SUBFLOW_INFO_SIZE, 0, max_subflows,
            ctypes.addressof(sfinfo), ctypes.addressof(tcpinfo),
        )
        n = _getsockopt(fd, SOL_MPTCP, MPTCP_FULL_INFO, header, len(header))
        num = struct.unpack_from("<I", header, 16)[0]
        if num > max_subflows:
            max_subflows = num + 4
            continue
        return parse_full_info(header.raw[:n], sfinfo.raw, tcpinfo.raw)


def _subflow_array(fd: int, opt: int, elem: int, max_subflows: int) -> tuple[int, int, bytes]:
    """MPTCP_TCPINFO / MPTCP_SUBFLOW_ADDRS: (count, kernel element size, array bytes)."""
    size = SUBFLOW_DATA_HEADER.size + max_subflows * elem
    buf = ctypes.create_string_buffer(size)
    SUBFLOW_DATA_HEADER.pack_into(buf, 0, SUBFLOW_DATA_HEADER.size, 0, 0, elem)
    _getsockopt(fd, SOL_MPTCP, opt, buf, size)
    _hdr, num, size_kernel, size_user = SUBFLOW_DATA_HEADER.unpack_from(buf, 0)
    return num, size_user, buf.raw[SUBFLOW_DATA_HEADER.size:]


def parse_subflow_arrays(info: MptcpInfo, tcpinfo: bytes, ti_num: int, ti_stride: int,
                         addrs: bytes, ad_num: int, ad_stride: int) -> FullInfo:
    """Join the MPTCP_TCPINFO and MPTCP_SUBFLOW_ADDRS arrays (same subflow order)."""
    subflows = []
    for i in range(min(ti_num, ad_num)):
        a = addrs[i * ad_stride:(i + 1) * ad_stride]
        local = parse_sockaddr(a[:SOCKADDR_STORAGE])
        remote = parse_sockaddr(a[SOCKADDR_STORAGE:2 * SOCKADDR_STORAGE])
        subflows.append(parse_tcp_info(tcpinfo[i * ti_stride:(i + 1) * ti_stride], i + 1, local, remote))
    return FullInfo(info=info, subflows=subflows, source="tcpinfo+addrs")


def mptcp_subflows_fallback(sock: socket.socket | int, max_subflows: int = MAX_SUBFLOWS) -> FullInfo:
    """Kernels 5.16-6.4: MPTCP_TCPINFO + MPTCP_SUBFLOW_ADDRS (no subflow ids: index + 1)."""
    fd = _fd(sock)
    info = mptcp_info(fd)
    ti_num, ti_stride, ti = _subflow_array(fd, MPTCP_TCPINFO, TCP_INFO_USER_SIZE, max_subflows)
    ad_num, ad_stride, ad = _subflow_array(fd, MPTCP_SUBFLOW_ADDRS, SUBFLOW_ADDRS_SIZE, max_subflows)
    return parse_subflow_arrays(info, ti, ti_num, ti_stride, ad, ad_num, ad_stride)


def tcp_info(sock: socket.socket) -> SubflowSample:
    """TCP_INFO of a plain TCP socket (or a fallen-back MPTCP one), as one subflow."""
    data = sock.getsockopt(SOL_TCP, TCP_INFO, TCP_INFO_USER_SIZE)
    local = sock.getsockname()[:2]
    remote = sock.getpeername()[:2]
    return parse_tcp_info(data, 0, _norm(local), _norm(remote))


def _norm(ep: tuple) -> Endpoint:
    addr = str(ep[0])
    if addr.startswith("::ffff:") and "." in addr:
        addr = addr[7:]
    return addr, int(ep[1])


def is_mptcp(sock: socket.socket) -> bool | None:
    """TCP_IS_MPTCP: True for a live MPTCP connection, False for TCP or fallback; None if unknown."""
    try:
        return bool(sock.getsockopt(SOL_TCP, TCP_IS_MPTCP))
    except OSError:
        return None


class SubflowReader:
    """Reads a socket's subflows with the best option the kernel has, remembered per socket.

    MPTCP_FULL_INFO first, then MPTCP_TCPINFO + MPTCP_SUBFLOW_ADDRS, then TCP_INFO (plain
    TCP or a connection that fell back to TCP).
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._method = "full_info" if sock.proto == socket.IPPROTO_MPTCP else "tcp_info"

    def read(self) -> FullInfo:
        if self._method == "full_info":
            try:
                return mptcp_full_info(self.sock)
            except SockoptUnsupported:
                self._method = "tcpinfo+addrs"
        if self._method == "tcpinfo+addrs":
            try:
                return mptcp_subflows_fallback(self.sock)
            except SockoptUnsupported:
                self._method = "tcp_info"
        return FullInfo(info=MptcpInfo(flags=1), subflows=[tcp_info(self.sock)], source="tcp_info")
