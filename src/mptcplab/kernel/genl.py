"""A small netlink client built on `struct` and a raw AF_NETLINK socket.

Why not pyroute2 here: importing pyroute2 costs about 0.4 s, its 0.9 MPTCP class lacks
half of the mptcp_pm family, and a generic netlink family needs only a dozen message
layouts. This module knows netlink framing (nlmsghdr, genlmsghdr, attributes, acks with
extended error messages, dumps, multicast membership); it knows nothing about MPTCP.

A socket is created inside a named network namespace (`netns.enter`) and stays there,
so one process can talk to the path managers of many lab nodes at once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from mptcplab.errors import KernelError
from mptcplab.kernel import netns as netns_mod

NETLINK_SOCK_DIAG = 4
NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_CAPPED = 0x100  # in an NLMSG_ERROR: the echoed request is cut to its header
NLM_F_ACK_TLVS = 0x200  # in an NLMSG_ERROR: extended ack attributes follow

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4

NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF
NLMSGERR_ATTR_MSG = 1

GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
CTRL_ATTR_VERSION = 3
CTRL_ATTR_MCAST_GROUPS = 7
CTRL_ATTR_MCAST_GRP_NAME = 1
CTRL_ATTR_MCAST_GRP_ID = 2

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_GENLHDR = struct.Struct("=BBH")  # cmd, version, reserved
_NLA = struct.Struct("=HH")  # len, type
RECV_SIZE = 1 << 16


# ---- attributes -------------------------------------------------------------

def _align(n: int) -> int:
    return (n + 3) & ~3


def nla(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = _NLA.size + len(payload)
    return _NLA.pack(length, kind) + payload + b"\0" * (_align(length) - length)


def nla_u8(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=B", value))


def nla_u16(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=H", value))


def nla_be16(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("!H", value))


def nla_u32(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=I", value))


def nla_s32(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=i", value))


def nla_str(kind: int, value: str) -> bytes:
    return nla(kind, value.encode() + b"\0")


def nla_nest(kind: int, attrs: Iterable[bytes]) -> bytes:
    return nla(kind | NLA_F_NESTED, b"".join(attrs))


def parse_attrs(data: bytes | memoryview) -> dict[int, bytes]:
    """Attributes of one level, by type (flag bits stripped); later duplicates win."""
    out: dict[int, bytes] = {}
    view = memoryview(data)
    off = 0
    while off + _NLA.size <= len(view):
        length, kind = _NLA.unpack_from(view, off)
        if length < _NLA.size or off + length > len(view):
            break
        out[kind & NLA_TYPE_MASK] = bytes(view[off + _NLA.size : off + length])
        off += _align(length)
    return out


def parse_attr_list(data: bytes) -> list[tuple[int, bytes]]:
    """Attributes of one level in order (for arrays such as multicast group lists)."""
    out = []
    off = 0
    while off + _NLA.size <= len(data):
        length, kind = _NLA.unpack_from(data, off)
        if length < _NLA.size or off + length > len(data):
            break
        out.append((kind & NLA_TYPE_MASK, data[off + _NLA.size : off + length]))
        off += _align(length)
    return out


def u8(data: bytes) -> int:
    return data[0]


def u16(data: bytes) -> int:
    return struct.unpack_from("=H", data)[0]


def be16(data: bytes) -> int:
    return struct.unpack_from("!H", data)[0]


def u32(data: bytes) -> int:
    return struct.unpack_from("=I", data)[0]


def s32(data: bytes) -> int:
    return struct.unpack_from("=i", data)[0]


# ---- messages and sockets ---------------------------------------------------

@dataclass(frozen=True)
class Message:
    """One received netlink message: its type, flags, and the bytes after nlmsghdr."""

    type: int
    flags: int
    seq: int
    payload: bytes


class NetlinkError(KernelError):
    """The kernel answered a request with an error (errno and its extended-ack text)."""

    def __init__(self, what: str, err: int, detail: str | None = None, netns: str | None = None) -> None:
        self.what = what
        self.errno = err
        self.detail = detail
        self.netns = netns
        msg = f"{what}: {os.strerror(err)}"
        if detail:
            msg += f" ({detail})"
        if netns:
            msg += f" [namespace {netns}]"
        super().__init__(msg)


def parse_messages(buf: bytes) -> list[Message]:
    msgs = []
    off = 0
    while off + _NLMSGHDR.size <= len(buf):
        length, kind, flags, seq, _pid = _NLMSGHDR.unpack_from(buf, off)
        if length < _NLMSGHDR.size or off + length > len(buf):
            break
        msgs.append(Message(kind, flags, seq, buf[off + _NLMSGHDR.size : off + length]))
        off += _align(length)
    return msgs


def _error_of(msg: Message) -> tuple[int, str | None]:
    """(errno, extended ack text) of an NLMSG_ERROR; errno 0 is a plain ack."""
    (code,) = struct.unpack_from("=i", msg.payload)
    detail = None
    if msg.flags & NLM_F_ACK_TLVS:
        # the echoed request is cut to its header when NETLINK_CAP_ACK is on
        (orig_len,) = struct.unpack_from("=I", msg.payload, 4)
        echoed = _NLMSGHDR.size if msg.flags & NLM_F_CAPPED else orig_len
        tlvs = parse_attrs(msg.payload[4 + _align(echoed):])
        if NLMSGERR_ATTR_MSG in tlvs:
            detail = tlvs[NLMSGERR_ATTR_MSG].rstrip(b"\0").decode(errors="replace") or None
    return -code, detail


class NetlinkSocket:
    """A netlink socket of PROTOCOL, created in namespace NETNS (None: the current one)."""

    def __init__(self, protocol: int, netns: str | None = None) -> None:
        try:
            with netns_mod.enter(netns):
                self.sock = socket.socket(
                    socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol
                )
        except OSError as exc:
            raise KernelError(f"netlink socket in namespace {netns or '(current)'}: {exc.strerror}") from None
        try:
            self.sock.bind((0, 0))
            for opt in (NETLINK_EXT_ACK, NETLINK_CAP_ACK):
                with contextlib.suppress(OSError):  # older kernels: plain errors without text
                    self.sock.setsockopt(SOL_NETLINK, opt, 1)
        except BaseException:
            self.sock.close()
            raise
        self.netns = netns
        self._seq = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NetlinkSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, kind: int, flags: int, payload: bytes) -> int:
        """Send one request; returns its sequence number."""
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), kind, flags, self._seq, 0)
        self.sock.send(header + payload)
        return self._seq

    def recv(self, timeout: float | None = None) -> list[Message]:
        """Messages of one datagram ([] when TIMEOUT seconds pass first)."""
        if timeout is not None:
            ready, _, _ = select.select([self.sock], [], [], max(timeout, 0.0))
            if not ready:
                return []
        return parse_messages(self.sock.recv(RECV_SIZE))

    def request(self, what: str, kind: int, payload: bytes, *, dump: bool = False) -> list[Message]:
        """Send a request and collect its replies until the ack or the end of the dump.

        WHAT names the operation for the error message ("add endpoint 10.0.1.1 id 3").
        """
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        seq = self.send(kind, flags, payload)
        replies: list[Message] = []
        while True:
            for msg in self.recv():
                if msg.seq != seq:
                    continue  # a stale answer or a multicast: not ours
                if msg.type == NLMSG_ERROR:
                    err, detail = _error_of(msg)
                    if err:
                        raise NetlinkError(what, err, detail, self.netns)
                    return replies
                if msg.type == NLMSG_DONE:
                    if len(msg.payload) >= 4:
                        (code,) = struct.unpack_from("=i", msg.payload)
                        if code < 0:
                            raise NetlinkError(what, -code, None, self.netns)
                    return replies
                if msg.type in (NLMSG_NOOP, NLMSG_OVERRUN):
                    continue
                replies.append(msg)  # data; the ack or NLMSG_DONE follows


@dataclass(frozen=True)
class Family:
    """A generic netlink family as the controller describes it."""

    name: str
    id: int
    version: int
    groups: dict[str, int]


class GenlSocket(NetlinkSocket):
    """A generic netlink socket bound to one family, resolved by name at creation."""

    def __init__(self, family: str, netns: str | None = None) -> None:
        super().__init__(NETLINK_GENERIC, netns)
        try:
            self.family = self._resolve(family)
        except BaseException:
            self.close()
            raise

    def _resolve(self, name: str) -> Family:
        payload = _GENLHDR.pack(CTRL_CMD_GETFAMILY, 1, 0) + nla_str(CTRL_ATTR_FAMILY_NAME, name)
        try:
            replies = self.request(f"generic netlink family {name}", GENL_ID_CTRL, payload)
        except NetlinkError as exc:
            if exc.errno == errno.ENOENT:
                raise KernelError(
                    f"generic netlink family {name!r} not found: this kernel lacks it "
                    "(for mptcp_pm: CONFIG_MPTCP)"
                ) from None
            raise
        attrs = parse_attrs(replies[0].payload[_GENLHDR.size:])
        groups: dict[str, int] = {}
        for _, grp in parse_attr_list(attrs.get(CTRL_ATTR_MCAST_GROUPS, b"")):
            g = parse_attrs(grp)
            if CTRL_ATTR_MCAST_GRP_NAME in g and CTRL_ATTR_MCAST_GRP_ID in g:
                groups[g[CTRL_ATTR_MCAST_GRP_NAME].rstrip(b"\0").decode()] = u32(g[CTRL_ATTR_MCAST_GRP_ID])
        return Family(name, u16(attrs[CTRL_ATTR_FAMILY_ID]), u32(attrs[CTRL_ATTR_VERSION]), groups)

    def genl_request(self, what: str, cmd: int, attrs: Iterable[bytes] = (), *, dump: bool = False) -> list[dict[int, bytes]]:
        """Run command CMD of the family; returns the attributes of each reply."""
        payload = _GENLHDR.pack(cmd, self.family.version, 0) + b"".join(attrs)
        replies = self.request(what, self.family.id, payload, dump=dump)
        return [parse_attrs(m.payload[_GENLHDR.size:]) for m in replies]

    def join_group(self, group: str) -> None:
        """Subscribe to a multicast group of the family."""
        try:
            gid = self.family.groups[group]
        except KeyError:
            raise KernelError(
                f"family {self.family.name} has no multicast group {group!r} "
                f"(has: {', '.join(sorted(self.family.groups)) or 'none'})"
            ) from None
        self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, gid)

    def split_genl(self, msg: Message) -> tuple[int, dict[int, bytes]] | None:
        """(command, attributes) of a message of this family, else None."""
        if msg.type != self.family.id or len(msg.payload) < _GENLHDR.size:
            return None
        cmd = msg.payload[0]
        return cmd, parse_attrs(msg.payload[_GENLHDR.size:])
