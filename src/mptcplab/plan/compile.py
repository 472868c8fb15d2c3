"""Compile a resolved topology into the ordered operations that build it.

Order matters: namespaces, sysctls, bridges, cables, addresses, links up, routes, rules,
then MPTCP limits and endpoints (an endpoint names a device that must exist).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from mptcplab.lab.state import netns_name
from mptcplab.model.resolve import Resolved, ResolvedNode
from mptcplab.plan import ops as o

TABLE_BASE = 100  # per-source routing tables: 100, 101, ... one per address
RULE_PRIORITY_BASE = 1000


@dataclass(frozen=True)
class KernelFacts:
    """What the plan must know about the kernel (probed by the caller, so the plan stays pure)."""

    path_manager_sysctl: bool = True  # net.mptcp.path_manager (6.15+); else net.mptcp.pm_type
    schedulers: tuple[str, ...] = field(default_factory=tuple)  # empty: unknown, do not check


def _mptcp_sysctls(node: ResolvedNode, facts: KernelFacts) -> list[tuple[str, str]]:
    m = node.mptcp
    out = [("net.mptcp.enabled", "1" if m["enabled"] else "0")]
    if m["enabled"]:
        if facts.path_manager_sysctl:
            out.append(("net.mptcp.path_manager", m["path_manager"]))
        else:
            out.append(("net.mptcp.pm_type", "1" if m["path_manager"] == "userspace" else "0"))
        if m["scheduler"]:
            out.append(("net.mptcp.scheduler", m["scheduler"]))
    return out


def _routes(node: ResolvedNode, ns: str) -> list[o.Op]:
    """Policy routing for multi-homed hosts (the seed's `ip rule from X table N`), static
    routes for routers, and a main default route through the first MPTCP interface."""
    out: list[o.Op] = []
    if node.kind == "router":
        for r in node.routes:
            fam = ipaddress.ip_network(r.dst).version
            out.append(o.AddRoute(ns, r.dst, r.dev, via=r.via, family=fam))
        return out
    table = TABLE_BASE
    if node.multihomed:
        for iface in node.interfaces:
            for cidr in iface.addresses:
                addr = ipaddress.ip_interface(cidr)
                fam = addr.version
                out.append(o.AddRoute(ns, str(addr.network), iface.name, table=table, family=fam))
                gw = iface.gateways.get(str(fam))
                if gw:
                    out.append(o.AddRoute(ns, "default", iface.name, via=gw, table=table, family=fam))
                out.append(o.AddRule(ns, str(addr.ip), table, RULE_PRIORITY_BASE + table - TABLE_BASE, fam))
                table += 1
    ordered = sorted(node.interfaces, key=lambda i: not i.flags)  # MPTCP interfaces first
    for fam in (4, 6):
        for iface in ordered:
            gw = iface.gateways.get(str(fam))
            has_family = any(ipaddress.ip_interface(a).version == fam for a in iface.addresses)
            if gw and has_family:
                out.append(o.AddRoute(ns, "default", iface.name, via=gw, family=fam))
                break
    return out


def compile_plan(resolved: Resolved, lab: str, facts: KernelFacts | None = None) -> list[o.Op]:
    """The operations that build lab LAB from RESOLVED, in order."""
    facts = facts or KernelFacts()
    ns = {name: netns_name(lab, name) for name in [*resolved.nodes, *resolved.switches]}
    plan: list[o.Op] = [o.CreateNetns(ns[name]) for name in ns]
    for sw in resolved.switches.values():
        for key in ("all", "default"):
            plan.append(o.SetSysctl(ns[sw.name], f"net.ipv6.conf.{key}.disable_ipv6", "1"))
    for node in resolved.nodes.values():
        # no duplicate address detection: link-local addresses usable at once, so IPv6
        # neighbour discovery works the moment `up` returns
        # no reverse-path filter: MPTCP subflows between multi-homed hosts may return on
        # another path (new namespaces inherit the root namespace's IPv4 setting otherwise)
        for key in ("all", "default"):
            plan.append(o.SetSysctl(ns[node.name], f"net.ipv6.conf.{key}.accept_dad", "0"))
            plan.append(o.SetSysctl(ns[node.name], f"net.ipv4.conf.{key}.rp_filter", "0"))
        if node.kind == "router":
            plan.append(o.SetSysctl(ns[node.name], "net.ipv4.ip_forward", "1"))
            plan.append(o.SetSysctl(ns[node.name], "net.ipv6.conf.all.forwarding", "1"))
        plan += [o.SetSysctl(ns[node.name], k, v) for k, v in _mptcp_sysctls(node, facts)]
        plan += [o.SetSysctl(ns[node.name], k, v) for k, v in node.sysctls.items()]
    plan += [o.LinkUp(ns[name], "lo") for name in ns]
    for sw in resolved.switches.values():
        for vid in sw.vlans:
            plan += [o.CreateBridge(ns[sw.name], f"vlan{vid}"), o.LinkUp(ns[sw.name], f"vlan{vid}")]
    for link in resolved.links:
        plan.append(o.CreateVeth(ns[link.a[0]], link.a[1], ns[link.b[0]], link.b[1]))
    for sw in resolved.switches.values():
        for port in sw.ports:
            if port.node is None:
                continue
            plan.append(o.CreateVeth(ns[port.node], port.iface, ns[sw.name], port.ifname))
            mtu = next((i.mtu for i in resolved.nodes[port.node].interfaces if i.name == port.iface), None)
            if mtu:
                plan.append(o.SetMtu(ns[sw.name], port.ifname, mtu))
            plan += [o.SetMaster(ns[sw.name], port.ifname, f"vlan{port.vlan}"), o.LinkUp(ns[sw.name], port.ifname)]
    for node in resolved.nodes.values():
        for iface in node.interfaces:
            if iface.mtu:
                plan.append(o.SetMtu(ns[node.name], iface.name, iface.mtu))
            plan.append(o.LinkUp(ns[node.name], iface.name))
            plan += [o.AddAddress(ns[node.name], iface.name, cidr) for cidr in iface.addresses]
    for node in resolved.nodes.values():
        plan += _routes(node, ns[node.name])
    for node in resolved.nodes.values():
        if not node.mptcp["enabled"]:
            continue
        plan.append(o.SetMptcpLimits(ns[node.name], node.mptcp["subflows"], node.mptcp["add_addr_accepted"]))
        for iface in node.interfaces:
            for addr, eid in iface.endpoint_ids.items():
                plan.append(o.AddEndpoint(ns[node.name], addr, eid, iface.name, tuple(iface.flags)))
    return plan
