"""Plans, without root: the seed's policy routing, endpoints, op order, the dry-run script."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from mptcplab.model.load import load_topology, parse_topology
from mptcplab.plan import ops as o
from mptcplab.plan.compile import KernelFacts, compile_plan
from mptcplab.plan.ops import script

LAB = "pl"

ROUTER_CHAIN = """
[addressing]
dual_stack = true
[nodes.h1]
[nodes.r1]
kind = "router"
[nodes.r2]
kind = "router"
[nodes.h2]
interfaces.eth0 = { mtu = 1400 }
[[links]]
endpoints = ["h1:eth0", "r1:eth0"]
[[links]]
endpoints = ["r1:eth1", "r2:eth0"]
[[links]]
endpoints = ["r2:eth1", "h2:eth0"]
"""


def plan_of(spec: str, facts: KernelFacts | None = None) -> list[o.Op]:
    loaded = load_topology(spec) if "\n" not in spec else parse_topology(spec, "t.toml")
    return compile_plan(loaded.resolved, LAB, facts)


def of(plan: list[o.Op], kind: type, ns: str | None = None) -> list:  # noqa: ANN401
    return [op for op in plan if isinstance(op, kind) and (ns is None or op.ns == ns)]


def test_openwrt_vde_has_the_seeds_policy_routing() -> None:
    plan = plan_of("openwrt-vde")
    for node, me, peer in (("a", 1, 2), ("b", 2, 1)):
        ns = f"{LAB}-{node}"
        rules = {(r.src, r.table, r.family) for r in of(plan, o.AddRule, ns)}
        # the seed: `ip rule add from 10.168.1.1 table 1`, `... from 10.168.2.1 table 2`
        assert (f"10.168.1.{me}", 100, 4) in rules and (f"10.168.2.{me}", 101, 4) in rules
        assert len({t for _s, t, _f in rules}) == len(rules)  # one table per address
        routes = {(r.dst, r.via, r.ifname, r.table) for r in of(plan, o.AddRoute, ns)}
        assert {
            ("10.168.1.0/24", None, "eth0", 100), ("default", f"10.168.1.{peer}", "eth0", 100),
            ("10.168.2.0/24", None, "eth1", 101), ("default", f"10.168.2.{peer}", "eth1", 101),
        } <= routes
        # main table: one default route, through path 1 (the seed: `ip route add default via 10.168.1.2`)
        main_defaults = [r for r in routes if r[3] is None]
        assert main_defaults == [("default", f"10.168.1.{peer}", "eth0", None)]
        # each table's rule points at the table holding that address's own subnet
        for src, table, _fam in rules:
            subnets = [d for d, _v, _i, t in routes if t == table and d != "default"]
            assert len(subnets) == 1 and src.rsplit(".", 1)[0] == subnets[0].rsplit(".", 1)[0]
        assert all(r.priority >= 1000 for r in of(plan, o.AddRule, ns))


def test_openwrt_vde_endpoints_and_limits() -> None:
    plan = plan_of("openwrt-vde")
    eps = {(e.ns, e.addr, e.id, e.ifname, e.flags) for e in of(plan, o.AddEndpoint)}
    assert eps == {
        (f"{LAB}-a", "10.168.1.1", 1, "eth0", ("fullmesh",)), (f"{LAB}-a", "10.168.2.1", 2, "eth1", ("fullmesh",)),
        (f"{LAB}-b", "10.168.1.2", 1, "eth0", ("signal",)), (f"{LAB}-b", "10.168.2.2", 2, "eth1", ("signal",)),
    }
    limits = {(lim.ns, lim.subflows, lim.add_addr_accepted) for lim in of(plan, o.SetMptcpLimits)}
    assert limits == {(f"{LAB}-a", 8, 8), (f"{LAB}-b", 8, 8)}
    # the management network is never an endpoint
    assert not [e for e in of(plan, o.AddEndpoint) if e.addr.startswith("10.168.255.")]


def test_openwrt_vde_switch() -> None:
    plan = plan_of("openwrt-vde")
    sw = f"{LAB}-sw"
    assert {b.name for b in of(plan, o.CreateBridge, sw)} == {"vlan1", "vlan2", "vlan3", "vlan4"}
    masters = {(m.ifname, m.master) for m in of(plan, o.SetMaster, sw)}
    assert masters == {("p10", "vlan1"), ("p11", "vlan2"), ("p2", "vlan3"),
                       ("p20", "vlan1"), ("p21", "vlan2"), ("p3", "vlan3")}
    veths = {(v.ns, v.ifname, v.peer_ns, v.peer_ifname) for v in of(plan, o.CreateVeth)}
    assert (f"{LAB}-a", "eth0", sw, "p10") in veths and (f"{LAB}-b", "eth2", sw, "p3") in veths
    assert len(veths) == 6
    assert not of(plan, o.AddAddress, sw) and not of(plan, o.AddEndpoint, sw)


def check_order(plan: list[o.Op]) -> None:
    """Invariants every plan keeps: namespaces first, MPTCP last, nothing used before it exists."""
    kinds = [type(op) for op in plan]
    n_ns = kinds.count(o.CreateNetns)
    assert n_ns and all(k is o.CreateNetns for k in kinds[:n_ns])
    mptcp_from = min(i for i, k in enumerate(kinds) if k in (o.SetMptcpLimits, o.AddEndpoint))
    assert all(k in (o.SetMptcpLimits, o.AddEndpoint) for k in kinds[mptcp_from:])
    assert kinds[-1] is o.AddEndpoint
    namespaces: set[str] = set()
    devices: set[tuple[str, str]] = set()
    up: set[tuple[str, str]] = set()
    addresses: set[tuple[str, str]] = set()
    for op in plan:
        if isinstance(op, o.CreateNetns):
            assert op.ns not in namespaces
            namespaces.add(op.ns)
            devices.add((op.ns, "lo"))
            continue
        assert op.ns in namespaces, f"{op.command()} before its namespace"
        match op:
            case o.CreateBridge():
                devices.add((op.ns, op.name))
            case o.CreateVeth():
                assert op.peer_ns in namespaces
                assert (op.ns, op.ifname) not in devices and (op.peer_ns, op.peer_ifname) not in devices
                devices |= {(op.ns, op.ifname), (op.peer_ns, op.peer_ifname)}
            case o.SetMaster():
                assert {(op.ns, op.ifname), (op.ns, op.master)} <= devices
            case o.LinkUp() | o.SetMtu():
                assert (op.ns, op.ifname) in devices
                if isinstance(op, o.LinkUp):
                    up.add((op.ns, op.ifname))
            case o.AddAddress():
                assert (op.ns, op.ifname) in devices
                addresses.add((op.ns, op.cidr.split("/")[0]))
            case o.AddRoute():
                assert (op.ns, op.ifname) in up, f"{op.command()} before its device is up"
            case o.AddRule():
                assert (op.ns, op.src) in addresses
            case o.AddEndpoint():
                assert (op.ns, op.ifname) in devices and (op.ns, op.addr) in addresses


@pytest.mark.parametrize("spec", ["openwrt-vde", "two-paths", ROUTER_CHAIN])
def test_op_order(spec: str) -> None:
    check_order(plan_of(spec))


def test_dual_stack_policy_routing_and_endpoints() -> None:
    plan = plan_of("two-paths")
    ns = f"{LAB}-client"
    rules = {(r.src, r.family) for r in of(plan, o.AddRule, ns)}
    assert rules == {("10.0.1.1", 4), ("fd00:6d70:0:1::1", 6), ("10.0.2.1", 4), ("fd00:6d70:0:2::1", 6)}
    defaults = [(r.via, r.family, r.ifname) for r in of(plan, o.AddRoute, ns) if r.dst == "default" and r.table is None]
    assert defaults == [("10.0.1.2", 4, "eth0"), ("fd00:6d70:0:1::2", 6, "eth0")]
    eps = [(e.addr, e.id, e.flags) for e in of(plan, o.AddEndpoint, ns)]
    assert eps == [("10.0.1.1", 1, ("subflow",)), ("fd00:6d70:0:1::1", 2, ("subflow",)),
                   ("10.0.2.1", 3, ("subflow",)), ("fd00:6d70:0:2::1", 4, ("subflow",))]
    v6 = [a for a in of(plan, o.AddAddress, ns) if ":" in a.cidr]
    assert v6 and all(a.command().endswith(" nodad") for a in v6)


def test_router_plan() -> None:
    plan = plan_of(ROUTER_CHAIN)
    r1 = f"{LAB}-r1"
    sysctls = {(s.key, s.value) for s in of(plan, o.SetSysctl, r1)}
    assert {("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.all.forwarding", "1")} <= sysctls
    assert not [s for s in of(plan, o.SetSysctl, f"{LAB}-h1") if "forward" in s.key]
    routes = {(r.dst, r.via, r.ifname, r.family, r.table) for r in of(plan, o.AddRoute, r1)}
    assert routes == {("10.0.3.0/24", "10.0.2.2", "eth1", 4, None), ("fd00:6d70:0:3::/64", "fd00:6d70:0:2::2", "eth1", 6, None)}
    assert not of(plan, o.AddRule, r1)  # routers route by destination only
    h1 = {(r.dst, r.via, r.family) for r in of(plan, o.AddRoute, f"{LAB}-h1")}
    assert h1 == {("default", "10.0.1.2", 4), ("default", "fd00:6d70:0:1::2", 6)}  # single-homed: no tables
    mtu = of(plan, o.SetMtu)
    assert {(m.ns, m.ifname, m.mtu) for m in mtu} == {(f"{LAB}-h2", "eth0", 1400)}


def test_kernel_facts_choose_sysctls() -> None:
    text = "[mptcp]\nscheduler = 'default'\npath_manager = 'userspace'\n[nodes.a]\n[nodes.b]\n" \
           '[[links]]\nendpoints = ["a:eth0", "b:eth0"]\n'
    new = {(s.key, s.value) for s in of(plan_of(text), o.SetSysctl, f"{LAB}-a")}
    assert {("net.mptcp.path_manager", "userspace"), ("net.mptcp.scheduler", "default")} <= new
    old = {(s.key, s.value) for s in of(plan_of(text, KernelFacts(path_manager_sysctl=False)), o.SetSysctl, f"{LAB}-a")}
    assert ("net.mptcp.pm_type", "1") in old and not [k for k, _ in old if k == "net.mptcp.path_manager"]


def test_mptcp_disabled_node_gets_no_endpoints() -> None:
    text = "[nodes.a]\nmptcp.enabled = false\n[nodes.b]\n" + '[[links]]\nendpoints = ["a:eth0", "b:eth0"]\n'
    plan = plan_of(text)
    assert ("net.mptcp.enabled", "0") in {(s.key, s.value) for s in of(plan, o.SetSysctl, f"{LAB}-a")}
    assert not of(plan, o.AddEndpoint, f"{LAB}-a") and not of(plan, o.SetMptcpLimits, f"{LAB}-a")
    assert of(plan, o.AddEndpoint, f"{LAB}-b")


def test_script_is_the_plan_as_commands() -> None:
    plan = plan_of("openwrt-vde")
    text = script(plan, "lab pl from preset openwrt-vde")
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash" and "set -euo pipefail" in lines[:4]
    body = [ln for ln in lines if ln and not ln.startswith(("#", "set "))]
    assert body == [op.command() for op in plan]
    assert all(shlex.split(ln)[0] == "ip" for ln in body)
    assert "ip netns add pl-a" in body and "ip -n pl-b mptcp endpoint add 10.168.2.2 dev eth1 id 2 signal" in body
    assert "ip -4 -n pl-a rule add from 10.168.1.1 table 100 pref 1000" in body
    assert "ip -4 -n pl-a route add default via 10.168.1.2 dev eth0" in body
    assert o.CreateNetns("pl-a").undo() == "ip netns del pl-a"
    assert "pl-sw" in o.CreateBridge("pl-sw", "vlan1").undo()


def test_script_quotes_odd_values() -> None:
    op = o.SetSysctl("n-a", "net.core.x", "1 2")
    assert shlex.split(op.command())[-1] == "net.core.x=1 2"


def test_cli_dry_run_prints_the_plan_and_builds_nothing() -> None:
    proc = subprocess.run([sys.executable, "-m", "mptcplab", "up", "two-paths", "--dry-run", "--name", "zzdry"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    from mptcplab.kernel import netns
    from mptcplab.lab.lab import kernel_facts

    expected = compile_plan(load_topology("two-paths").resolved, "zzdry", kernel_facts())
    body = [ln for ln in proc.stdout.splitlines() if ln and not ln.startswith(("#", "set "))]
    assert body == [op.command() for op in expected]
    assert not [n for n in netns.list_names() if n.startswith("zzdry-")]


def test_cli_explain_numbers_commands_with_undo() -> None:
    proc = subprocess.run([sys.executable, "-m", "mptcplab", "explain", "openwrt-vde", "--name", "zzx"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "300"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split(None, 1) == ["1", "ip netns add zzx-a"]
    assert lines[1].strip() == "undo: ip netns del zzx-a"
    n = len(compile_plan(load_topology("openwrt-vde").resolved, "zzx"))
    assert sum(1 for ln in lines if ln.strip().startswith("undo:")) == n
