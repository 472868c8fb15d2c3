"""The mptcp_pm generic netlink family: endpoints, limits, flags, userspace PM, events.

Built on the small struct-based netlink client in `mptcplab.kernel.genl`, not on
pyroute2: importing this module costs a few milliseconds instead of 0.4 s, and the whole
family (SET_FLAGS, ANNOUNCE, REMOVE, SUBFLOW_CREATE/DESTROY and the event group) is here,
typed as the kernel's Documentation/netlink/specs/mptcp_pm.yaml says (IF_IDX of an
address is a signed 32-bit integer; pyroute2 0.9.7 gets that one wrong) and as the
kernel really behaves where the spec is wrong: the PORT of an address travels in host
byte order (the spec says big-endian; `ip mptcp` and the kernel both use host order,
checked by the port the kernel's listener binds). Event ports are big-endian.

Every object holds one netlink socket created in the network namespace it was given;
the socket keeps talking to that namespace's path manager whichever thread uses it.
Kernel refusals raise KernelError naming the operation, e.g.
"add endpoint 10.0.1.1 id 3: File exists".
"""

from __future__ import annotations

import errno
import ipaddress
import select
import socket
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

from mptcplab.errors import KernelError, MptcplabError
from mptcplab.kernel import genl
from mptcplab.kernel import netns as netns_mod

FAMILY_NAME = "mptcp_pm"
EVENTS_GROUP = "mptcp_pm_events"

FLAG_NAMES = {"signal": 0x1, "subflow": 0x2, "backup": 0x4, "fullmesh": 0x8, "implicit": 0x10, "laminar": 0x20}
MAX_ENDPOINTS = 8
MAX_LIMIT = 8

# commands
CMD_ADD_ADDR = 1
CMD_DEL_ADDR = 2
CMD_GET_ADDR = 3
CMD_FLUSH_ADDRS = 4
CMD_SET_LIMITS = 5
CMD_GET_LIMITS = 6
CMD_SET_FLAGS = 7
CMD_ANNOUNCE = 8
CMD_REMOVE = 9
CMD_SUBFLOW_CREATE = 10
CMD_SUBFLOW_DESTROY = 11

# MPTCP_PM_ATTR_*
ATTR_ADDR = 1
ATTR_RCV_ADD_ADDRS = 2
ATTR_SUBFLOWS = 3
ATTR_TOKEN = 4
ATTR_LOC_ID = 5
ATTR_ADDR_REMOTE = 6

# MPTCP_PM_ADDR_ATTR_*
ADDR_FAMILY = 1
ADDR_ID = 2
ADDR_ADDR4 = 3
ADDR_ADDR6 = 4
ADDR_PORT = 5
ADDR_FLAGS = 6
ADDR_IF_IDX = 7

# events and MPTCP_ATTR_* of events
EVENT_KINDS = {
    1: "created", 2: "established", 3: "closed", 6: "announced", 7: "removed",
    10: "sf_established", 11: "sf_closed", 13: "sf_priority",
    15: "listener_created", 16: "listener_closed",
}
EV_TOKEN = 1
EV_FAMILY = 2
EV_LOC_ID = 3
EV_REM_ID = 4
EV_SADDR4 = 5
EV_SADDR6 = 6
EV_DADDR4 = 7
EV_DADDR6 = 8
EV_SPORT = 9
EV_DPORT = 10
EV_BACKUP = 11
EV_ERROR = 12
EV_IF_IDX = 15
EV_SERVER_SIDE = 18


class PMArgumentError(MptcplabError, ValueError):
    """A path-manager request that is wrong before the kernel sees it (unknown flag, ...)."""


# ---- values -----------------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    """One MPTCP endpoint of a namespace (a line of `ip mptcp endpoint show`)."""

    id: int
    addr: str
    flags: frozenset[str]
    ifindex: int | None
    port: int | None

    def to_dict(self) -> dict:
        return {"id": self.id, "addr": self.addr, "flags": sorted(self.flags),
                "ifindex": self.ifindex, "port": self.port}


@dataclass(frozen=True)
class Limits:
    """Per-namespace limits of the in-kernel path manager."""

    subflows: int
    add_addr_accepted: int


def flags_value(flags: Iterable[str]) -> int:
    """Bitmask of endpoint flag NAMES; unknown names are an error listing the known ones."""
    value = 0
    for name in flags:
        try:
            value |= FLAG_NAMES[name]
        except KeyError:
            raise PMArgumentError(
                f"unknown endpoint flag {name!r} (known: {', '.join(FLAG_NAMES)})"
            ) from None
    return value


def flag_names(value: int) -> frozenset[str]:
    """Names of the bits in VALUE; a bit this module does not know shows as '0x..'."""
    names = {name for name, bit in FLAG_NAMES.items() if value & bit}
    known = sum(FLAG_NAMES.values())
    rest = value & ~known
    bit = 1
    while rest:
        if rest & bit:
            names.add(f"0x{bit:x}")
            rest &= ~bit
        bit <<= 1
    return frozenset(names)


def _ip(addr: str, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(addr)
    except ValueError:
        raise PMArgumentError(f"{what}: {addr!r} is not an IPv4 or IPv6 address") from None


def _addr_attrs(addr: str | None, *, what: str, id: int | None = None, port: int | None = None,
                flags: int | None = None, ifindex: int | None = None) -> list[bytes]:
    """The attributes of one MPTCP_PM_ATTR_ADDR nest (the kernel's 'address' set)."""
    attrs = []
    if addr is not None:
        ip = _ip(addr, what)
        if ip.version == 4:
            attrs += [genl.nla_u16(ADDR_FAMILY, socket.AF_INET), genl.nla(ADDR_ADDR4, ip.packed)]
        else:
            attrs += [genl.nla_u16(ADDR_FAMILY, socket.AF_INET6), genl.nla(ADDR_ADDR6, ip.packed)]
    if id is not None:
        if not 0 <= id <= 255:
            raise PMArgumentError(f"{what}: id {id} is out of range 0..255")
        attrs.append(genl.nla_u8(ADDR_ID, id))
    if port:
        if not 0 < port < 65536:
            raise PMArgumentError(f"{what}: port {port} is out of range 1..65535")
        attrs.append(genl.nla_u16(ADDR_PORT, port))  # host order, whatever the yaml spec says
    if flags is not None:
        attrs.append(genl.nla_u32(ADDR_FLAGS, flags))
    if ifindex:
        attrs.append(genl.nla_s32(ADDR_IF_IDX, ifindex))
    return attrs


def _parse_endpoint(attrs: dict[int, bytes]) -> Endpoint:
    if ADDR_ADDR4 in attrs:
        addr = socket.inet_ntop(socket.AF_INET, attrs[ADDR_ADDR4][:4])
    elif ADDR_ADDR6 in attrs:
        addr = socket.inet_ntop(socket.AF_INET6, attrs[ADDR_ADDR6][:16])
    else:
        addr = ""
    port = genl.u16(attrs[ADDR_PORT]) if ADDR_PORT in attrs else 0
    ifindex = genl.s32(attrs[ADDR_IF_IDX]) if ADDR_IF_IDX in attrs else 0
    return Endpoint(
        id=genl.u8(attrs[ADDR_ID]) if ADDR_ID in attrs else 0,
        addr=addr,
        flags=flag_names(genl.u32(attrs[ADDR_FLAGS]) if ADDR_FLAGS in attrs else 0),
        ifindex=ifindex or None,
        port=port or None,
    )


# ---- commands ---------------------------------------------------------------

# (command, errno) -> what the user most likely needs to know
_HINTS = {
    (CMD_ADD_ADDR, errno.ERANGE): f"at most {MAX_ENDPOINTS} endpoints per namespace",
    (CMD_ADD_ADDR, errno.EADDRNOTAVAIL): "a signal endpoint with a port needs the address on a local interface",
}

class MptcpPM:
    """The path manager of one network namespace (None: the current one), over one socket."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._sock = genl.GenlSocket(FAMILY_NAME, netns)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> MptcpPM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _do(self, what: str, cmd: int, attrs: Iterable[bytes] = (), *, dump: bool = False) -> list[dict[int, bytes]]:
        try:
            return self._sock.genl_request(what, cmd, list(attrs), dump=dump)
        except genl.NetlinkError as exc:
            hint = _HINTS.get((cmd, exc.errno))
            if hint is None:
                raise
            raise genl.NetlinkError(exc.what, exc.errno, f"{exc.detail}; {hint}" if exc.detail else hint,
                                    exc.netns) from None

    # in-kernel path manager: endpoints
    def endpoints(self) -> list[Endpoint]:
        """Every endpoint, by id."""
        replies = self._do("list endpoints", CMD_GET_ADDR, dump=True)
        eps = [_parse_endpoint(genl.parse_attrs(r[ATTR_ADDR])) for r in replies if ATTR_ADDR in r]
        return sorted(eps, key=lambda e: e.id)

    def add_endpoint(self, addr: str, *, id: int | None = None, flags: Iterable[str] = (),
                     ifindex: int | None = None, port: int | None = None) -> None:
        """Add an endpoint (`ip mptcp endpoint add ADDR [id N] [dev IF] [port P] FLAGS`)."""
        flags = frozenset(flags)
        what = f"add endpoint {addr}" + (f" id {id}" if id is not None else "")
        value = flags_value(flags)
        if "fullmesh" in flags and "signal" in flags:
            raise PMArgumentError(f"{what}: flag fullmesh cannot be combined with signal")
        if port and "signal" not in flags:
            raise PMArgumentError(f"{what}: a port needs the signal flag")
        attrs = _addr_attrs(addr, what=what, id=id, port=port, flags=value, ifindex=ifindex)
        self._do(what, CMD_ADD_ADDR, [genl.nla_nest(ATTR_ADDR, attrs)])

    def del_endpoint(self, id: int, addr: str | None = None) -> None:
        """Delete endpoint ID (id 0, the initial subflow's address, needs ADDR)."""
        what = f"delete endpoint id {id}" + (f" {addr}" if addr else "")
        attrs = _addr_attrs(addr, what=what, id=id)
        self._do(what, CMD_DEL_ADDR, [genl.nla_nest(ATTR_ADDR, attrs)])

    def flush_endpoints(self) -> None:
        """Delete every endpoint."""
        self._do("flush endpoints", CMD_FLUSH_ADDRS, [genl.nla_nest(ATTR_ADDR, [])])

    def set_endpoint_flags(self, id: int, flags: Iterable[str], addr: str | None = None) -> None:
        """Set the backup and fullmesh flags of endpoint ID to exactly what FLAGS says.

        The kernel changes only those two flags (`ip mptcp endpoint change`); other
        names in FLAGS are accepted and ignored, so the full wanted set may be passed.
        """
        flags = frozenset(flags)
        what = f"set flags of endpoint id {id} to {','.join(sorted(flags)) or 'none'}"
        value = flags_value(flags) & (FLAG_NAMES["backup"] | FLAG_NAMES["fullmesh"])
        attrs = _addr_attrs(addr, what=what, id=id, flags=value)
        self._do(what, CMD_SET_FLAGS, [genl.nla_nest(ATTR_ADDR, attrs)])

    # in-kernel path manager: limits
    def limits(self) -> Limits:
        replies = self._do("get limits", CMD_GET_LIMITS)
        attrs = replies[0] if replies else {}
        return Limits(
            subflows=genl.u32(attrs[ATTR_SUBFLOWS]) if ATTR_SUBFLOWS in attrs else 0,
            add_addr_accepted=genl.u32(attrs[ATTR_RCV_ADD_ADDRS]) if ATTR_RCV_ADD_ADDRS in attrs else 0,
        )

    def set_limits(self, subflows: int | None = None, add_addr_accepted: int | None = None) -> None:
        """Set either limit or both (`ip mptcp limits set`); None keeps the current value."""
        what = "set limits" + (f" subflows {subflows}" if subflows is not None else "") + (
            f" add_addr_accepted {add_addr_accepted}" if add_addr_accepted is not None else "")
        attrs = []
        for name, value, kind in (("add_addr_accepted", add_addr_accepted, ATTR_RCV_ADD_ADDRS),
                                  ("subflows", subflows, ATTR_SUBFLOWS)):
            if value is None:
                continue
            if not 0 <= value <= MAX_LIMIT:
                raise PMArgumentError(f"{what}: {name} must be 0..{MAX_LIMIT}")
            attrs.append(genl.nla_u32(kind, value))
        if attrs:
            self._do(what, CMD_SET_LIMITS, attrs)

    # userspace path manager (net.mptcp.path_manager=userspace where the connection was made)
    def announce(self, token: int, addr: str, id: int, port: int | None = None,
                 ifindex: int | None = None) -> None:
        """Send ADD_ADDR for ADDR (address id ID) on connection TOKEN."""
        what = f"announce {addr} id {id} on token {token:#010x}"
        attrs = _addr_attrs(addr, what=what, id=id, port=port, flags=FLAG_NAMES["signal"], ifindex=ifindex)
        self._do(what, CMD_ANNOUNCE, [genl.nla_u32(ATTR_TOKEN, token), genl.nla_nest(ATTR_ADDR, attrs)])

    def remove(self, token: int, id: int) -> None:
        """Send REMOVE_ADDR for address id ID on connection TOKEN (and close its subflows)."""
        what = f"remove address id {id} on token {token:#010x}"
        if not 0 <= id <= 255:
            raise PMArgumentError(f"{what}: id out of range 0..255")
        self._do(what, CMD_REMOVE, [genl.nla_u32(ATTR_TOKEN, token), genl.nla_u8(ATTR_LOC_ID, id)])

    def subflow_create(self, token: int, local_addr: str, local_id: int, remote_addr: str,
                       remote_port: int, ifindex: int | None = None) -> None:
        """Open a subflow LOCAL_ADDR -> REMOTE_ADDR:REMOTE_PORT on connection TOKEN."""
        what = f"create subflow {local_addr} -> {remote_addr}:{remote_port} on token {token:#010x}"
        local = _addr_attrs(local_addr, what=what, id=local_id, ifindex=ifindex)
        remote = _addr_attrs(remote_addr, what=what, port=remote_port)
        self._do(what, CMD_SUBFLOW_CREATE, [genl.nla_u32(ATTR_TOKEN, token), genl.nla_nest(ATTR_ADDR, local),
                                            genl.nla_nest(ATTR_ADDR_REMOTE, remote)])

    def subflow_destroy(self, token: int, local_addr: str, local_port: int, remote_addr: str,
                        remote_port: int) -> None:
        """Close the subflow LOCAL_ADDR:LOCAL_PORT -> REMOTE_ADDR:REMOTE_PORT of TOKEN."""
        what = (f"destroy subflow {local_addr}:{local_port} -> {remote_addr}:{remote_port} "
                f"on token {token:#010x}")
        local = _addr_attrs(local_addr, what=what, port=local_port)
        remote = _addr_attrs(remote_addr, what=what, port=remote_port)
        self._do(what, CMD_SUBFLOW_DESTROY, [genl.nla_u32(ATTR_TOKEN, token), genl.nla_nest(ATTR_ADDR, local),
                                             genl.nla_nest(ATTR_ADDR_REMOTE, remote)])

    def set_prio(self, token: int, local_addr: str, local_port: int, remote_addr: str,
                 remote_port: int, backup: bool) -> None:
        """Mark a subflow of TOKEN backup or not (sends MP_PRIO)."""
        what = (f"set subflow {local_addr}:{local_port} -> {remote_addr}:{remote_port} "
                f"{'backup' if backup else 'not backup'} on token {token:#010x}")
        local = _addr_attrs(local_addr, what=what, port=local_port,
                            flags=FLAG_NAMES["backup"] if backup else 0)
        remote = _addr_attrs(remote_addr, what=what, port=remote_port)
        self._do(what, CMD_SET_FLAGS, [genl.nla_u32(ATTR_TOKEN, token), genl.nla_nest(ATTR_ADDR, local),
                                       genl.nla_nest(ATTR_ADDR_REMOTE, remote)])


# ---- events -----------------------------------------------------------------

@dataclass(frozen=True)
class PMEvent:
    """One path-manager event (what `ip mptcp monitor` prints), stamped when received."""

    kind: str
    time: float
    token: int | None = None
    family: int | None = None
    saddr: str | None = None
    daddr: str | None = None
    sport: int | None = None
    dport: int | None = None
    loc_id: int | None = None
    rem_id: int | None = None
    backup: bool | None = None
    error: int | None = None
    ifindex: int | None = None
    server_side: bool | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def parse_event(cmd: int, attrs: dict[int, bytes], received: float) -> PMEvent:
    """Decode the attributes of event CMD (an unknown event keeps its number as kind)."""

    def get(kind: int, conv):  # noqa: ANN001, ANN202 - tiny local helper
        return conv(attrs[kind]) if kind in attrs else None

    def ip(kind4: int, kind6: int) -> str | None:
        if kind4 in attrs:
            return socket.inet_ntop(socket.AF_INET, attrs[kind4][:4])
        if kind6 in attrs:
            return socket.inet_ntop(socket.AF_INET6, attrs[kind6][:16])
        return None

    backup = get(EV_BACKUP, genl.u8)
    server_side = get(EV_SERVER_SIDE, genl.u8)
    return PMEvent(
        kind=EVENT_KINDS.get(cmd, f"event_{cmd}"),
        time=received,
        token=get(EV_TOKEN, genl.u32),
        family=get(EV_FAMILY, genl.u16),
        saddr=ip(EV_SADDR4, EV_SADDR6),
        daddr=ip(EV_DADDR4, EV_DADDR6),
        sport=get(EV_SPORT, genl.be16),
        dport=get(EV_DPORT, genl.be16),
        loc_id=get(EV_LOC_ID, genl.u8),
        rem_id=get(EV_REM_ID, genl.u8),
        backup=None if backup is None else bool(backup),
        error=get(EV_ERROR, genl.u8),
        ifindex=get(EV_IF_IDX, genl.s32),
        server_side=None if server_side is None else bool(server_side),
    )


class PMEventListener:
    """Receives the mptcp_pm_events multicast group of one namespace.

    Subscribed from construction on, so create it before the connection you watch.
    `overruns` counts times the kernel dropped events because they were not read fast
    enough (ENOBUFS); the receive buffer is enlarged to make that rare.
    """

    RCVBUF = 4 << 20

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self.overruns = 0
        self._sock = genl.GenlSocket(FAMILY_NAME, netns)
        try:
            try:
                self._sock.sock.setsockopt(socket.SOL_SOCKET, 33, self.RCVBUF)  # SO_RCVBUFFORCE
            except OSError:
                self._sock.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.RCVBUF)
            self._sock.join_group(EVENTS_GROUP)
        except BaseException:
            self._sock.close()
            raise

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> PMEventListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _recv_batch(self) -> list[PMEvent]:
        try:
            msgs = self._sock.recv()
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:
                self.overruns += 1
                return []
            raise
        now = time.time()
        events = []
        for msg in msgs:
            split = self._sock.split_genl(msg)
            if split is not None:
                events.append(parse_event(split[0], split[1], now))
        return events

    def read(self, timeout: float | None = None) -> list[PMEvent]:
        """Events that arrived: waits up to TIMEOUT seconds (None: until at least one).

        After the first datagram, whatever else is already queued is returned too.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        events: list[PMEvent] = []
        while True:
            wait = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            if events:
                wait = 0.0
            ready, _, _ = select.select([self._sock.sock], [], [], wait)
            if not ready:
                return events
            events += self._recv_batch()
            if deadline is not None and time.monotonic() >= deadline and not events:
                return events

    def __iter__(self) -> Iterator[PMEvent]:
        while True:
            yield from self.read()


# ---- connections (sock_diag) and the namespace's path manager ------------------

SOCK_DIAG_BY_FAMILY = 20
INET_DIAG_INFO = 2
INET_DIAG_REQ_PROTOCOL = 3
INET_DIAG_ULP_INFO = 19
INET_ULP_INFO_NAME = 1
INET_ULP_INFO_MPTCP = 3
SF_TOKEN_LOC = 2  # MPTCP_SUBFLOW_ATTR_*
SF_FLAGS = 8
SF_ID_REM = 9
SF_ID_LOC = 10
SF_FLAG_BKUP_REM = 0x10  # MPTCP_SUBFLOW_FLAG_*
SF_FLAG_BKUP_LOC = 0x20
TCP_ESTABLISHED = 1
_DIAG_REQ = struct.Struct("=BBBxI")  # family, protocol, ext, states (+ 48-byte sockid)
_DIAG_MSG = struct.Struct("=BBBB")  # family, state, timer, retrans
_MPTCP_INFO_HEAD = struct.Struct("=6B2xII")  # subflows .. add_addr_accepted_max, flags, token


@dataclass(frozen=True)
class Connection:
    """An established MPTCP connection of a namespace, as sock_diag reports it."""

    token: int
    family: int
    saddr: str
    sport: int
    daddr: str
    dport: int
    subflows: int  # extra subflows, not counting the first (mptcp_info.subflows)
    fallback: bool  # fell back to plain TCP: the path manager cannot act on it

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Subflow:
    """An established TCP subflow of an MPTCP connection, as sock_diag reports it."""

    token: int  # the local token of its MPTCP connection
    family: int
    saddr: str
    sport: int
    daddr: str
    dport: int
    loc_id: int
    rem_id: int
    backup: bool  # we asked the peer not to use it (MP_PRIO / MP_JOIN backup bit sent)
    peer_backup: bool  # the peer asked us not to use it

    def to_dict(self) -> dict:
        return asdict(self)


def _diag_dump(netns: str | None, protocol: int, what: str) -> list[tuple[int, str, int, str, int, dict[int, bytes]]]:
    """Established sockets of PROTOCOL: (family, saddr, sport, daddr, dport, attributes)."""
    out = []
    with genl.NetlinkSocket(genl.NETLINK_SOCK_DIAG, netns) as sock:
        for family in (socket.AF_INET, socket.AF_INET6):
            # sdiag_protocol is a u8: IPPROTO_MPTCP (262) travels in INET_DIAG_REQ_PROTOCOL
            req = (_DIAG_REQ.pack(family, protocol & 0xFF, 1 << (INET_DIAG_INFO - 1),
                                  1 << TCP_ESTABLISHED) + bytes(48)
                   + genl.nla_u32(INET_DIAG_REQ_PROTOCOL, protocol))
            try:
                replies = sock.request(what, SOCK_DIAG_BY_FAMILY, req, dump=True)
            except genl.NetlinkError as exc:
                if exc.errno == errno.ENOENT:
                    raise KernelError(f"{what}: this kernel lacks inet_diag for protocol {protocol}") from None
                raise
            for msg in replies:
                p = msg.payload
                fam, state = p[0], p[1]
                if state != TCP_ESTABLISHED:
                    continue
                sport, dport = struct.unpack_from("!HH", p, 4)
                size = 4 if fam == socket.AF_INET else 16
                out.append((fam, diag_addr(fam, p[8 : 8 + size]), sport,
                            diag_addr(fam, p[24 : 24 + size]), dport, genl.parse_attrs(p[72:])))
    return out


def diag_addr(family: int, raw: bytes) -> str:
    """Text of an address; an IPv4-mapped IPv6 one (dual-stack socket) as plain IPv4."""
    if family == socket.AF_INET6 and raw[:12] == b"\0" * 10 + b"\xff\xff":
        return socket.inet_ntop(socket.AF_INET, raw[12:16])
    return socket.inet_ntop(family, raw)


def connections(netns: str | None = None) -> list[Connection]:
    """Established MPTCP connections in NETNS (listeners excluded), from inet_diag.

    Needs the mptcp_diag module (CONFIG_INET_MPTCP_DIAG).
    """
    found = []
    for family, saddr, sport, daddr, dport, attrs in _diag_dump(
            netns, socket.IPPROTO_MPTCP, "list MPTCP connections"):
        info = attrs.get(INET_DIAG_INFO, b"")
        if len(info) < _MPTCP_INFO_HEAD.size:
            continue
        fields = _MPTCP_INFO_HEAD.unpack_from(info)
        found.append(Connection(token=fields[7], family=family, saddr=saddr, sport=sport,
                                daddr=daddr, dport=dport, subflows=fields[0],
                                fallback=bool(fields[6] & 1)))
    return found


def subflows(netns: str | None = None, token: int | None = None) -> list[Subflow]:
    """Established subflows in NETNS (of connection TOKEN only, if given), from tcp_diag.

    A subflow is a TCP socket whose ULP is "mptcp"; its INET_DIAG_ULP_INFO carries the
    tokens and address ids (what `ss -ti` prints after tcp-ulp-mptcp).
    """
    found = []
    for family, saddr, sport, daddr, dport, attrs in _diag_dump(
            netns, socket.IPPROTO_TCP, "list MPTCP subflows"):
        ulp = genl.parse_attrs(attrs.get(INET_DIAG_ULP_INFO, b""))
        if ulp.get(INET_ULP_INFO_NAME, b"").rstrip(b"\0") != b"mptcp" or INET_ULP_INFO_MPTCP not in ulp:
            continue
        sf = genl.parse_attrs(ulp[INET_ULP_INFO_MPTCP])
        tok = genl.u32(sf[SF_TOKEN_LOC]) if SF_TOKEN_LOC in sf else 0
        if token is not None and tok != token:
            continue
        flags = genl.u32(sf[SF_FLAGS]) if SF_FLAGS in sf else 0
        found.append(Subflow(
            token=tok, family=family, saddr=saddr, sport=sport, daddr=daddr, dport=dport,
            loc_id=genl.u8(sf[SF_ID_LOC]) if SF_ID_LOC in sf else 0,
            rem_id=genl.u8(sf[SF_ID_REM]) if SF_ID_REM in sf else 0,
            backup=bool(flags & SF_FLAG_BKUP_LOC), peer_backup=bool(flags & SF_FLAG_BKUP_REM),
        ))
    return found


def path_manager(netns: str | None = None) -> str:
    """'kernel' or 'userspace': the path manager new connections in NETNS get.

    Reads net.mptcp.path_manager (6.15+), else net.mptcp.pm_type (0 kernel, 1 userspace).
    """
    with netns_mod.enter(netns):
        try:
            with open("/proc/sys/net/mptcp/path_manager") as fh:
                return fh.read().strip()
        except FileNotFoundError:
            pass
        try:
            with open("/proc/sys/net/mptcp/pm_type") as fh:
                return "userspace" if fh.read().strip() == "1" else "kernel"
        except FileNotFoundError:
            raise KernelError("this kernel has no MPTCP sysctls (is MPTCP enabled?)") from None
