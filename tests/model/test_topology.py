"""Topology resolution: presets, automatic addressing, gateways, endpoint ids, router routes."""

from __future__ import annotations

import ipaddress

import pytest

from mptcplab.errors import ConfigError
from mptcplab.model.load import load_topology, parse_topology, presets
from mptcplab.model.resolve import Resolved, ResolvedNode


def iface(node: ResolvedNode, name: str):  # noqa: ANN201 - ResolvedInterface
    return next(i for i in node.interfaces if i.name == name)


def test_presets_are_listed() -> None:
    found = presets()
    assert {"openwrt-vde", "two-paths"} <= set(found)
    assert all(desc for desc in found.values())


def test_openwrt_vde_resolves_like_the_seed() -> None:
    topo = load_topology("openwrt-vde")
    res = topo.resolved
    assert topo.source == "preset openwrt-vde"
    assert res.name == "openwrt-vde" == topo.default_lab_name
    assert set(res.nodes) == {"a", "b"} and set(res.switches) == {"sw"}
    a, b = res.nodes["a"], res.nodes["b"]
    assert a.kind == b.kind == "host" and a.routes == [] and a.multihomed
    for node, me, peer in ((a, 1, 2), (b, 2, 1)):
        assert [i.name for i in node.interfaces] == ["eth0", "eth1", "eth2"]
        assert iface(node, "eth0").addresses == [f"10.168.1.{me}/24"]
        assert iface(node, "eth1").addresses == [f"10.168.2.{me}/24"]
        assert iface(node, "eth2").addresses == [f"10.168.255.{me}/24"]
        assert iface(node, "eth0").gateways == {"4": f"10.168.1.{peer}"}
        assert iface(node, "eth1").gateways == {"4": f"10.168.2.{peer}"}
        # management: MPTCP off, so no endpoint
        assert iface(node, "eth2").flags == [] and iface(node, "eth2").endpoint_ids == {}
        assert iface(node, "eth0").endpoint_ids == {f"10.168.1.{me}": 1}
        assert iface(node, "eth1").endpoint_ids == {f"10.168.2.{me}": 2}
        assert node.mptcp["subflows"] == 8 and node.mptcp["add_addr_accepted"] == 8
        assert node.mptcp["enabled"] and node.mptcp["path_manager"] == "kernel"
    assert iface(a, "eth0").flags == iface(a, "eth1").flags == ["fullmesh"]
    assert iface(b, "eth0").flags == iface(b, "eth1").flags == ["signal"]
    sw = res.switches["sw"]
    assert sw.vlans == [1, 2, 3, 4]
    ports = {p.port: (p.vlan, p.node, p.iface) for p in sw.ports}
    assert ports == {
        10: (1, "a", "eth0"), 11: (2, "a", "eth1"), 2: (3, "a", "eth2"),
        20: (1, "b", "eth0"), 21: (2, "b", "eth1"), 3: (3, "b", "eth2"),
    }
    assert iface(a, "eth0").segment == "vlan:sw:1" and iface(a, "eth0").peer == "sw:10"


def test_two_paths_resolves_dual_stack() -> None:
    res = load_topology("two-paths").resolved
    client, server = res.nodes["client"], res.nodes["server"]
    assert [lk.name for lk in res.links] == ["path1", "path2"]
    for n, (node, me, peer) in enumerate(((client, 1, 2), (server, 2, 1))):
        del n
        for k, name in enumerate(("eth0", "eth1"), 1):
            i = iface(node, name)
            assert i.addresses == [f"10.0.{k}.{me}/24", f"fd00:6d70:0:{k}::{me}/64"]
            assert i.gateways == {"4": f"10.0.{k}.{peer}", "6": f"fd00:6d70:0:{k}::{peer}"}
        ids = {addr: eid for i in node.interfaces for addr, eid in i.endpoint_ids.items()}
        assert ids == {f"10.0.1.{me}": 1, f"fd00:6d70:0:1::{me}": 2,
                       f"10.0.2.{me}": 3, f"fd00:6d70:0:2::{me}": 4}
    assert all(i.flags == ["subflow"] for i in client.interfaces)
    assert all(i.flags == ["signal"] for i in server.interfaces)
    assert iface(client, "eth0").peer == "server:eth0"


def test_resolved_round_trips_through_dict() -> None:
    for name in ("openwrt-vde", "two-paths"):
        res = load_topology(name).resolved
        assert Resolved.from_dict(res.to_dict()) == res


CHAIN_NO_ADDRESSES = """
[nodes.h1]
[nodes.h2]
[nodes.h3]
[[links]]
endpoints = ["h1:eth0", "h2:eth0"]
[[links]]
endpoints = ["h2:eth1", "h3:eth0"]
[[links]]
endpoints = ["h1:eth1", "h3:eth1"]
"""


def test_auto_addressing_one_subnet_per_link_in_file_order() -> None:
    res = parse_topology(CHAIN_NO_ADDRESSES, "t.toml").resolved
    addrs = {(n.name, i.name): i.addresses for n in res.nodes.values() for i in n.interfaces}
    assert addrs == {
        ("h1", "eth0"): ["10.0.1.1/24"], ("h2", "eth0"): ["10.0.1.2/24"],
        ("h2", "eth1"): ["10.0.2.1/24"], ("h3", "eth0"): ["10.0.2.2/24"],
        ("h1", "eth1"): ["10.0.3.1/24"], ("h3", "eth1"): ["10.0.3.2/24"],
    }
    # IPv4 only unless asked
    assert all(":" not in a for lst in addrs.values() for a in lst)
    # endpoint ids count per node, in interface order
    h1 = res.nodes["h1"]
    assert [i.endpoint_ids for i in h1.interfaces] == [{"10.0.1.1": 1}, {"10.0.3.1": 2}]


def test_auto_addressing_dual_stack_adds_ipv6() -> None:
    res = parse_topology("[addressing]\ndual_stack = true\n" + CHAIN_NO_ADDRESSES, "t.toml").resolved
    h3 = res.nodes["h3"]
    assert iface(h3, "eth0").addresses == ["10.0.2.2/24", "fd00:6d70:0:2::2/64"]
    assert iface(h3, "eth1").addresses == ["10.0.3.2/24", "fd00:6d70:0:3::2/64"]
    assert iface(h3, "eth0").gateways == {"4": "10.0.2.1", "6": "fd00:6d70:0:2::1"}
    assert iface(h3, "eth1").endpoint_ids == {"10.0.3.2": 3, "fd00:6d70:0:3::2": 4}


def test_auto_addressing_ipv6_only_and_custom_pool() -> None:
    text = '[addressing]\nauto = ["ipv6"]\nipv6_pool = "fd99::/48"\n' + CHAIN_NO_ADDRESSES
    res = parse_topology(text, "t.toml").resolved
    assert iface(res.nodes["h2"], "eth1").addresses == ["fd99:0:0:2::1/64"]
    text = '[addressing]\nipv4_pool = "192.168.0.0/16"\n' + CHAIN_NO_ADDRESSES
    res = parse_topology(text, "t.toml").resolved
    assert iface(res.nodes["h3"], "eth1").addresses == ["192.168.3.2/24"]


def test_auto_addresses_avoid_explicit_ones() -> None:
    text = """
[nodes.h1.interfaces.eth0]
ipv4 = "10.0.1.7/24"
[nodes.h2]
[nodes.h3]
[[links]]
endpoints = ["h1:eth0", "h2:eth0"]
[[links]]
endpoints = ["h2:eth1", "h3:eth0"]
"""
    res = parse_topology(text, "t.toml").resolved
    # the peer on the explicit subnet gets a free host of it; the next link skips 10.0.1.0/24
    assert iface(res.nodes["h2"], "eth0").addresses == ["10.0.1.1/24"]
    assert iface(res.nodes["h2"], "eth1").addresses == ["10.0.2.1/24"]
    assert iface(res.nodes["h3"], "eth0").addresses == ["10.0.2.2/24"]


def test_link_subnet_numbers_hosts() -> None:
    text = CHAIN_NO_ADDRESSES.replace(
        'endpoints = ["h2:eth1", "h3:eth0"]', 'endpoints = ["h2:eth1", "h3:eth0"]\nipv4 = "172.16.5.0/30"'
    )
    res = parse_topology(text, "t.toml").resolved
    assert iface(res.nodes["h2"], "eth1").addresses == ["172.16.5.1/30"]
    assert iface(res.nodes["h3"], "eth0").addresses == ["172.16.5.2/30"]
    assert iface(res.nodes["h1"], "eth1").addresses == ["10.0.2.1/24"]  # pool continues


def test_full_link_subnet_is_an_error() -> None:
    text = """
[switches.s]
vlans = { 1 = { ipv4 = "10.9.9.0/30" } }
ports = [{ port = 1, vlan = 1, connect = "a:e0" }, { port = 2, vlan = 1, connect = "b:e0" },
         { port = 3, vlan = 1, connect = "c:e0" }]
[nodes.a]
[nodes.b]
[nodes.c]
"""
    with pytest.raises(ConfigError, match=r"switches\.s\.vlans\.1: subnet 10\.9\.9\.0/30 has no free address"):
        parse_topology(text, "t.toml")


ROUTER_CHAIN = """
[addressing]
dual_stack = true
[nodes.h1]
[nodes.r1]
kind = "router"
[nodes.r2]
kind = "router"
[nodes.r3]
kind = "router"
[nodes.h2]
[[links]]
endpoints = ["h1:eth0", "r1:eth0"]
[[links]]
endpoints = ["r1:eth1", "r2:eth0"]
[[links]]
endpoints = ["r2:eth1", "r3:eth0"]
[[links]]
endpoints = ["r3:eth1", "h2:eth0"]
"""


def routes(node: ResolvedNode) -> set[tuple[str, str, str]]:
    return {(r.dst, r.via, r.dev) for r in node.routes}


def test_router_in_a_three_node_chain_needs_no_static_route() -> None:
    text = """
[nodes.h1]
[nodes.r]
kind = "router"
[nodes.h2]
[[links]]
endpoints = ["h1:eth0", "r:eth0"]
[[links]]
endpoints = ["r:eth1", "h2:eth0"]
"""
    res = parse_topology(text, "t.toml").resolved
    assert res.nodes["r"].routes == []
    assert iface(res.nodes["h1"], "eth0").gateways == {"4": "10.0.1.2"}
    assert iface(res.nodes["h2"], "eth0").gateways == {"4": "10.0.2.1"}
    assert not res.nodes["h1"].multihomed


def test_router_static_routes_on_a_chain_of_three_routers() -> None:
    res = parse_topology(ROUTER_CHAIN, "t.toml").resolved
    assert routes(res.nodes["r1"]) == {
        ("10.0.3.0/24", "10.0.2.2", "eth1"), ("fd00:6d70:0:3::/64", "fd00:6d70:0:2::2", "eth1"),
        ("10.0.4.0/24", "10.0.2.2", "eth1"), ("fd00:6d70:0:4::/64", "fd00:6d70:0:2::2", "eth1"),
    }
    assert routes(res.nodes["r2"]) == {
        ("10.0.1.0/24", "10.0.2.1", "eth0"), ("fd00:6d70:0:1::/64", "fd00:6d70:0:2::1", "eth0"),
        ("10.0.4.0/24", "10.0.3.2", "eth1"), ("fd00:6d70:0:4::/64", "fd00:6d70:0:3::2", "eth1"),
    }
    assert routes(res.nodes["r3"]) == {
        ("10.0.1.0/24", "10.0.3.1", "eth0"), ("fd00:6d70:0:1::/64", "fd00:6d70:0:3::1", "eth0"),
        ("10.0.2.0/24", "10.0.3.1", "eth0"), ("fd00:6d70:0:2::/64", "fd00:6d70:0:3::1", "eth0"),
    }
    assert res.nodes["h1"].routes == [] and res.nodes["h2"].routes == []
    assert iface(res.nodes["h2"], "eth0").gateways == {"4": "10.0.4.1", "6": "fd00:6d70:0:4::1"}
    # no router routes to a subnet it is on
    for name in ("r1", "r2", "r3"):
        node = res.nodes[name]
        local = {str(ipaddress.ip_interface(a).network) for i in node.interfaces for a in i.addresses}
        assert not local & {r.dst for r in node.routes}


def test_routes_do_not_cross_hosts() -> None:
    """A host does not forward: no router sends packets through one."""
    text = """
[nodes.r1]
kind = "router"
[nodes.h]
[nodes.r2]
kind = "router"
[nodes.far]
[[links]]
endpoints = ["r1:eth0", "h:eth0"]
[[links]]
endpoints = ["h:eth1", "r2:eth0"]
[[links]]
endpoints = ["r2:eth1", "far:eth0"]
"""
    res = parse_topology(text, "t.toml").resolved
    assert res.nodes["r1"].routes == [] and res.nodes["r2"].routes == []


def test_topology_mptcp_defaults_and_overrides() -> None:
    text = """
[mptcp]
subflows = 2
path_manager = "userspace"
[nodes.a]
mptcp = { subflows = 4, endpoints = "signal,backup" }
interfaces.eth1 = { mptcp = "off" }
[nodes.b]
mptcp = { enabled = false }
[[links]]
endpoints = ["a:eth0", "b:eth0"]
[[links]]
endpoints = ["a:eth1", "b:eth1"]
"""
    res = parse_topology(text, "t.toml").resolved
    a, b = res.nodes["a"], res.nodes["b"]
    assert a.mptcp["subflows"] == 4 and a.mptcp["path_manager"] == "userspace"
    assert a.mptcp["add_addr_accepted"] == 8
    assert iface(a, "eth0").flags == ["backup", "signal"]
    assert iface(a, "eth1").flags == [] and iface(a, "eth1").endpoint_ids == {}
    assert b.mptcp["enabled"] is False and b.mptcp["subflows"] == 2
    assert all(i.flags == [] and i.endpoint_ids == {} for i in b.interfaces)


def test_mtu_and_sysctls_are_carried() -> None:
    text = """
[nodes.a]
interfaces.eth0 = { mtu = 1400 }
sysctls = { "net.ipv4.tcp_congestion_control" = "reno", "net.core.somaxconn" = 512 }
[nodes.b]
[[links]]
endpoints = ["a:eth0", "b:eth0"]
"""
    res = parse_topology(text, "t.toml").resolved
    assert iface(res.nodes["a"], "eth0").mtu == 1400
    assert res.nodes["a"].sysctls == {"net.ipv4.tcp_congestion_control": "reno", "net.core.somaxconn": "512"}


def test_preset_file_path_and_missing_file(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "mine.toml"
    path.write_text(CHAIN_NO_ADDRESSES)
    loaded = load_topology(str(path))
    assert loaded.source == str(path) and loaded.default_lab_name == "lab"
    with pytest.raises(ConfigError, match="no such file"):
        load_topology(str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="not a preset"):
        load_topology("no-such-preset")
