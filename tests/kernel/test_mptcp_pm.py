"""mptcp_pm generic netlink: encoding (no root), endpoint/limit round trips in fresh namespaces."""

from __future__ import annotations

import socket
import struct
import subprocess

import pytest

from mptcplab.errors import KernelError
from mptcplab.kernel import genl
from mptcplab.kernel import mptcp_pm as pm_mod
from mptcplab.kernel.mptcp_pm import Endpoint, Limits, MptcpPM, PMArgumentError

# ---- no root ------------------------------------------------------------------


def test_flags_round_trip() -> None:
    assert pm_mod.flags_value(["signal", "backup"]) == 0x5
    assert pm_mod.flag_names(0x5) == frozenset({"signal", "backup"})
    assert pm_mod.flag_names(0x20 | 0x80) == frozenset({"laminar", "0x80"})
    with pytest.raises(PMArgumentError, match="unknown endpoint flag 'bogus'"):
        pm_mod.flags_value(["bogus"])


def test_address_attributes_encoding() -> None:
    attrs = genl.parse_attrs(b"".join(pm_mod._addr_attrs(
        "10.0.1.1", what="t", id=3, port=1234, flags=0x1, ifindex=7)))
    assert genl.u16(attrs[pm_mod.ADDR_FAMILY]) == socket.AF_INET
    assert attrs[pm_mod.ADDR_ADDR4] == bytes([10, 0, 1, 1])
    assert attrs[pm_mod.ADDR_ID] == b"\x03"
    assert genl.u16(attrs[pm_mod.ADDR_PORT]) == 1234
    assert genl.u32(attrs[pm_mod.ADDR_FLAGS]) == 1
    assert genl.s32(attrs[pm_mod.ADDR_IF_IDX]) == 7
    v6 = genl.parse_attrs(b"".join(pm_mod._addr_attrs("dead:beef::1", what="t")))
    assert genl.u16(v6[pm_mod.ADDR_FAMILY]) == socket.AF_INET6
    assert len(v6[pm_mod.ADDR_ADDR6]) == 16
    with pytest.raises(PMArgumentError, match="not an IPv4 or IPv6"):
        pm_mod._addr_attrs("10.0.1", what="t")


def test_negative_ifindex_is_signed() -> None:
    ep = pm_mod._parse_endpoint({pm_mod.ADDR_ID: b"\x01", pm_mod.ADDR_ADDR4: bytes(4),
                                 pm_mod.ADDR_IF_IDX: struct.pack("=i", -2)})
    assert ep.ifindex == -2


def test_nested_attribute_parsing() -> None:
    nest = genl.nla_nest(1, [genl.nla_u8(2, 9), genl.nla_u32(6, 0x12)])
    outer = genl.parse_attrs(nest)
    assert set(outer) == {1}  # NLA_F_NESTED stripped
    inner = genl.parse_attrs(outer[1])
    assert inner[2] == b"\x09" and genl.u32(inner[6]) == 0x12


def test_event_parsing() -> None:
    attrs = genl.parse_attrs(b"".join([
        genl.nla_u32(pm_mod.EV_TOKEN, 0xDEADBEEF), genl.nla_u16(pm_mod.EV_FAMILY, 2),
        genl.nla(pm_mod.EV_SADDR4, bytes([10, 0, 2, 1])), genl.nla(pm_mod.EV_DADDR4, bytes([10, 0, 2, 2])),
        genl.nla_be16(pm_mod.EV_SPORT, 40000), genl.nla_be16(pm_mod.EV_DPORT, 5201),
        genl.nla_u8(pm_mod.EV_LOC_ID, 2), genl.nla_u8(pm_mod.EV_REM_ID, 0),
        genl.nla_u8(pm_mod.EV_BACKUP, 1), genl.nla_s32(pm_mod.EV_IF_IDX, 3),
    ]))
    ev = pm_mod.parse_event(10, attrs, 12.5)
    assert ev.kind == "sf_established" and ev.token == 0xDEADBEEF
    assert (ev.saddr, ev.sport, ev.daddr, ev.dport) == ("10.0.2.1", 40000, "10.0.2.2", 5201)
    assert (ev.loc_id, ev.rem_id, ev.backup, ev.ifindex) == (2, 0, True, 3)
    assert ev.error is None and ev.server_side is None
    assert ev.to_dict()["time"] == 12.5
    assert pm_mod.parse_event(99, {}, 0).kind == "event_99"


def test_diag_addresses() -> None:
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:10.0.1.2")
    assert pm_mod.diag_addr(socket.AF_INET6, mapped) == "10.0.1.2"
    assert pm_mod.diag_addr(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, "dead::1")) == "dead::1"
    assert pm_mod.diag_addr(socket.AF_INET, bytes([10, 0, 1, 2])) == "10.0.1.2"


def test_netlink_error_text() -> None:
    exc = genl.NetlinkError("add endpoint 10.0.1.1 id 3", 17)
    assert str(exc) == "add endpoint 10.0.1.1 id 3: File exists"
    assert isinstance(exc, KernelError)


def test_endpoint_to_dict() -> None:
    ep = Endpoint(3, "10.0.1.1", frozenset({"subflow", "backup"}), None, None)
    assert ep.to_dict() == {"id": 3, "addr": "10.0.1.1", "flags": ["backup", "subflow"],
                            "ifindex": None, "port": None}


# ---- root: a fresh namespace ----------------------------------------------------


def ip(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True)


@pytest.mark.root
def test_endpoint_round_trip(netns_factory) -> None:
    ns = netns_factory("pm")
    ip(ns, "link", "set", "lo", "up")
    ip(ns, "addr", "add", "10.0.3.1/32", "dev", "lo")
    with MptcpPM(ns) as pm:
        assert pm.endpoints() == []
        pm.add_endpoint("10.0.1.1", id=3, flags=["signal"])
        pm.add_endpoint("10.0.2.1", flags=["subflow", "fullmesh"], ifindex=1)
        pm.add_endpoint("dead:beef:2::1", id=7, flags=["subflow", "backup"])
        pm.add_endpoint("10.0.3.1", id=9, flags=["signal"], port=1234)
        eps = {e.id: e for e in pm.endpoints()}
        assert eps[3] == Endpoint(3, "10.0.1.1", frozenset({"signal"}), None, None)
        auto = next(e for e in eps.values() if e.addr == "10.0.2.1")
        assert auto.flags == {"subflow", "fullmesh"} and auto.ifindex == 1 and auto.id not in (3, 7, 9)
        assert eps[7].addr == "dead:beef:2::1" and eps[7].flags == {"subflow", "backup"}
        assert eps[9].port == 1234
        # the kernel's listener for a signal endpoint with a port binds that very port
        out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hltn"], capture_output=True, text=True).stdout
        assert "10.0.3.1:1234" in out

        with pytest.raises(KernelError, match=r"add endpoint 10\.0\.1\.1 id 3"):
            pm.add_endpoint("10.0.1.1", id=3, flags=["signal"])
        with pytest.raises(PMArgumentError, match="fullmesh cannot be combined with signal"):
            pm.add_endpoint("10.0.4.1", flags=["signal", "fullmesh"])

        pm.set_endpoint_flags(7, ["backup", "subflow"])  # unchanged
        pm.set_endpoint_flags(7, [])  # clears backup
        assert next(e for e in pm.endpoints() if e.id == 7).flags == {"subflow"}
        pm.set_endpoint_flags(auto.id, ["backup"])  # backup on, fullmesh off
        assert next(e for e in pm.endpoints() if e.id == auto.id).flags == {"subflow", "backup"}
        with pytest.raises(KernelError, match="set flags of endpoint id 3"):
            pm.set_endpoint_flags(3, ["fullmesh"])  # a signal endpoint cannot be fullmesh

        pm.del_endpoint(3)
        assert 3 not in {e.id for e in pm.endpoints()}
        with pytest.raises(KernelError, match="delete endpoint id 3"):
            pm.del_endpoint(3)
        pm.flush_endpoints()
        assert pm.endpoints() == []


@pytest.mark.root
def test_ninth_endpoint_is_refused(netns_factory) -> None:
    ns = netns_factory("pm9")
    with MptcpPM(ns) as pm:
        for i in range(1, 9):
            pm.add_endpoint(f"10.1.0.{i}", flags=["subflow"])
        assert len(pm.endpoints()) == 8
        with pytest.raises(KernelError, match=r"add endpoint 10\.1\.0\.9: "):
            pm.add_endpoint("10.1.0.9", flags=["subflow"])
        assert len(pm.endpoints()) == 8


@pytest.mark.root
def test_limits_round_trip(netns_factory) -> None:
    ns = netns_factory("lim")
    with MptcpPM(ns) as pm:
        assert pm.limits() == Limits(subflows=2, add_addr_accepted=0)  # kernel defaults
        pm.set_limits(subflows=4)
        assert pm.limits() == Limits(4, 0)
        pm.set_limits(add_addr_accepted=3)
        assert pm.limits() == Limits(4, 3)
        pm.set_limits(8, 8)
        assert pm.limits() == Limits(8, 8)
        with pytest.raises(PMArgumentError, match="subflows must be 0..8"):
            pm.set_limits(subflows=9)


@pytest.mark.root
def test_namespaces_are_independent(netns_factory) -> None:
    a, b = netns_factory("a"), netns_factory("b")
    with MptcpPM(a) as pa, MptcpPM(b) as pb:
        pa.add_endpoint("10.0.1.1", id=1, flags=["subflow"])
        pa.set_limits(subflows=5)
        assert pb.endpoints() == [] and pb.limits().subflows == 2
        assert [e.addr for e in pa.endpoints()] == ["10.0.1.1"]


# ---- root: a real MPTCP connection between two namespaces -------------------------

SOL_MPTCP = 284
MPTCP_INFO = 1
PORT = 5000


def two_hosts(netns_factory, *, userspace: bool) -> tuple[str, str]:
    """Client A and server B joined by two veth pairs: 10.0.1.0/24 and 10.0.2.0/24."""
    a, b = netns_factory("a"), netns_factory("b")
    for i in (1, 2):
        ip(a, "link", "add", f"a{i}", "type", "veth", "peer", "name", f"b{i}", "netns", b)
        ip(a, "addr", "add", f"10.0.{i}.1/24", "dev", f"a{i}")
        ip(b, "addr", "add", f"10.0.{i}.2/24", "dev", f"b{i}")
        ip(a, "link", "set", f"a{i}", "up")
        ip(b, "link", "set", f"b{i}", "up")
    if userspace:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.mptcp.path_manager=userspace"],
                           check=True)
    return a, b


def connect(a: str, b: str) -> tuple[socket.socket, socket.socket, socket.socket]:
    """An MPTCP connection from A (10.0.1.1) to B (10.0.1.2:PORT): (listener, client, accepted)."""
    from mptcplab.kernel import netns
    with netns.enter(b):
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_MPTCP)
        srv.bind(("0.0.0.0", PORT))  # joins to 10.0.2.2 need a listener there too
        srv.listen()
    with netns.enter(a):
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_MPTCP)
    cli.settimeout(5)
    srv.settimeout(5)
    cli.connect(("10.0.1.2", PORT))
    conn, _ = srv.accept()
    cli.sendall(b"hello")
    assert conn.recv(5) == b"hello"
    return srv, cli, conn


def wait_for(listener: pm_mod.PMEventListener, kind: str, seen: list, timeout: float = 5.0) -> pm_mod.PMEvent:
    """Read events into SEEN until one of KIND arrives (fails after TIMEOUT seconds)."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        for ev in seen:
            if ev.kind == kind:
                return ev
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"no {kind} event within {timeout}s; got {[e.kind for e in seen]}")
        seen += listener.read(left)


def extra_subflows(sock: socket.socket) -> int:
    """mptcp_info.subflows: subflows beyond the first, as the kernel counts them."""
    return sock.getsockopt(SOL_MPTCP, MPTCP_INFO, 96)[0]


@pytest.mark.root
def test_events_of_a_kernel_pm_connection(netns_factory) -> None:
    a, b = two_hosts(netns_factory, userspace=False)
    with MptcpPM(b) as pb:
        pb.add_endpoint("10.0.2.2", id=1, flags=["signal"])
        pb.set_limits(subflows=2)
    with MptcpPM(a) as pa:
        pa.set_limits(subflows=2, add_addr_accepted=2)
    with pm_mod.PMEventListener(a) as la:
        srv, cli, conn = connect(a, b)
        seen: list = []
        sf = wait_for(la, "sf_established", seen)
        kinds = [e.kind for e in seen]
        assert kinds[:2] == ["created", "established"]
        created = seen[0]
        token = struct.unpack_from("=I", cli.getsockopt(SOL_MPTCP, MPTCP_INFO, 96), 12)[0]
        assert created.token == token
        assert (created.saddr, created.daddr, created.dport) == ("10.0.1.1", "10.0.1.2", PORT)
        assert created.sport == cli.getsockname()[1]
        announced = next(e for e in seen if e.kind == "announced")
        assert (announced.daddr, announced.rem_id, announced.dport) == ("10.0.2.2", 1, PORT)
        assert (sf.token, sf.saddr, sf.daddr, sf.dport, sf.rem_id) == (token, "10.0.2.1", "10.0.2.2", PORT, 1)
        assert sf.backup is False and sf.error is None
        assert extra_subflows(cli) == 1
        [c] = pm_mod.connections(a)
        assert (c.token, c.saddr, c.daddr, c.dport, c.subflows, c.fallback) == (
            token, "10.0.1.1", "10.0.1.2", PORT, 1, False)
        for s in (cli, conn, srv):
            s.close()
        closed = wait_for(la, "closed", seen)
        assert closed.token == token
        assert pm_mod.connections(a) == []


@pytest.mark.root
def test_userspace_pm_announce_subflow_prio_destroy_remove(netns_factory) -> None:
    a, b = two_hosts(netns_factory, userspace=True)
    assert pm_mod.path_manager(a) == "userspace"
    with pm_mod.PMEventListener(a) as la, pm_mod.PMEventListener(b) as lb, \
            MptcpPM(a) as pa, MptcpPM(b) as pb:
        srv, cli, conn = connect(a, b)
        seen_a: list = []
        seen_b: list = []
        token_a = wait_for(la, "established", seen_a).token
        token_b = wait_for(lb, "established", seen_b).token
        assert {c.token for c in pm_mod.connections(a)} == {token_a}
        assert extra_subflows(cli) == 0  # the userspace PM makes nothing by itself

        pb.announce(token_b, "10.0.2.2", id=5)
        ann = wait_for(la, "announced", seen_a)
        assert (ann.token, ann.daddr, ann.rem_id) == (token_a, "10.0.2.2", 5)

        pa.subflow_create(token_a, "10.0.2.1", 4, "10.0.2.2", PORT)
        sf = wait_for(la, "sf_established", seen_a)
        assert (sf.saddr, sf.daddr, sf.dport, sf.loc_id, sf.rem_id) == ("10.0.2.1", "10.0.2.2", PORT, 4, 5)
        assert extra_subflows(cli) == 1
        assert pm_mod.connections(a)[0].subflows == 1
        sfs = {(x.saddr, x.sport): x for x in pm_mod.subflows(a, token_a)}
        assert set(sfs) == {("10.0.1.1", cli.getsockname()[1]), ("10.0.2.1", sf.sport)}
        assert (sfs["10.0.2.1", sf.sport].loc_id, sfs["10.0.2.1", sf.sport].rem_id) == (4, 5)
        assert pm_mod.subflows(a, token_a ^ 1) == []
        cli.sendall(b"x" * 100_000)  # the connection still carries data
        got = 0
        while got < 100_000:
            got += len(conn.recv(65536))

        pa.set_prio(token_a, sf.saddr, sf.sport, sf.daddr, sf.dport, backup=True)
        prio = wait_for(lb, "sf_priority", seen_b)  # the peer sees MP_PRIO
        assert prio.backup is True and prio.token == token_b and prio.daddr == "10.0.2.1"
        [mine] = [x for x in pm_mod.subflows(a, token_a) if x.saddr == "10.0.2.1"]
        [theirs] = [x for x in pm_mod.subflows(b, token_b) if x.daddr == "10.0.2.1"]
        assert mine.backup and not mine.peer_backup and theirs.peer_backup

        pa.subflow_destroy(token_a, sf.saddr, sf.sport, sf.daddr, sf.dport)
        closed = wait_for(la, "sf_closed", seen_a)
        assert (closed.saddr, closed.sport, closed.daddr) == ("10.0.2.1", sf.sport, "10.0.2.2")
        assert extra_subflows(cli) == 0

        pb.remove(token_b, 5)
        removed = wait_for(la, "removed", seen_a)
        assert (removed.token, removed.rem_id) == (token_a, 5)

        with pytest.raises(KernelError, match=r"create subflow 10\.0\.2\.1 -> 10\.0\.2\.2:5000 on token 0x0*1\b"):
            pa.subflow_create(1, "10.0.2.1", 4, "10.0.2.2", PORT)  # no such token
        for s in (cli, conn, srv):
            s.close()


@pytest.mark.root
def test_userspace_commands_refused_by_kernel_pm(netns_factory) -> None:
    a, b = two_hosts(netns_factory, userspace=False)
    srv, cli, conn = connect(a, b)
    try:
        [c] = pm_mod.connections(a)
        with MptcpPM(a) as pa, pytest.raises(KernelError, match="announce 10.0.2.1 id 3 on token"):
            pa.announce(c.token, "10.0.2.1", 3)
    finally:
        for s in (cli, conn, srv):
            s.close()
