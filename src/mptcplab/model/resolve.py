"""From a validated Topology to a resolved one: every reference checked, every address,
gateway, endpoint id and static route decided. Pure; the plan compiles from this.

Errors name the field path as written in the file (nodes.a.interfaces.eth0.ipv4[0]).
"""

from __future__ import annotations

import ipaddress
import re
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from mptcplab.errors import ConfigError
from mptcplab.model.topology import IFNAME_PATTERN, MAX_ENDPOINTS, Mptcp, Topology, parse_mptcp_role

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass
class Segment:
    """A broadcast domain: one link, or one VLAN of a switch."""

    id: str
    path: str  # where it is declared, for error messages
    subnets: dict[int, IPNetwork]  # family (4/6) -> subnet
    members: list[tuple[str, str]] = field(default_factory=list)  # (node, iface)


@dataclass
class ResolvedInterface:
    node: str
    name: str
    addresses: list[str]  # CIDR strings, IPv4 first
    flags: list[str]  # MPTCP endpoint flags, [] = off
    endpoint_ids: dict[str, int]  # address (no prefix) -> endpoint id
    mtu: int | None
    segment: str
    gateways: dict[str, str]  # "4"/"6" -> gateway address on this segment
    peer: str  # "node:iface" for links, "switch:port" for switch ports


@dataclass
class ResolvedRoute:
    dst: str
    via: str
    dev: str


@dataclass
class ResolvedNode:
    name: str
    kind: str
    mptcp: dict[str, Any]
    sysctls: dict[str, str]
    interfaces: list[ResolvedInterface]
    routes: list[ResolvedRoute]

    @property
    def multihomed(self) -> bool:
        return sum(1 for i in self.interfaces if i.addresses) > 1


@dataclass
class ResolvedPort:
    port: int
    vlan: int
    node: str | None
    iface: str | None

    @property
    def ifname(self) -> str:
        return f"p{self.port}"


@dataclass
class ResolvedSwitch:
    name: str
    vlans: list[int]
    ports: list[ResolvedPort]


@dataclass
class ResolvedLink:
    name: str
    a: tuple[str, str]
    b: tuple[str, str]


@dataclass
class Resolved:
    """Everything the plan needs, and what `status` and other commands read back."""

    name: str | None
    description: str
    nodes: dict[str, ResolvedNode]
    links: list[ResolvedLink]
    switches: dict[str, ResolvedSwitch]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Resolved:
        nodes = {
            name: ResolvedNode(
                **{
                    **n,
                    "interfaces": [ResolvedInterface(**i) for i in n["interfaces"]],
                    "routes": [ResolvedRoute(**r) for r in n["routes"]],
                }
            )
            for name, n in data["nodes"].items()
        }
        links = [ResolvedLink(name=ln["name"], a=tuple(ln["a"]), b=tuple(ln["b"])) for ln in data["links"]]
        switches = {
            name: ResolvedSwitch(name=s["name"], vlans=s["vlans"], ports=[ResolvedPort(**p) for p in s["ports"]])
            for name, s in data["switches"].items()
        }
        return cls(data.get("name"), data.get("description", ""), nodes, links, switches)


class _Resolver:
    def __init__(self, topo: Topology, source: str) -> None:
        self.topo = topo
        self.source = source
        self.segments: dict[str, Segment] = {}
        self.attached: dict[tuple[str, str], tuple[str, str, str]] = {}  # -> (segment, peer, path)
        self.link_names: list[str] = []

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(self.source, path, message)

    # -- references -------------------------------------------------------
    def endpoint(self, ref: str, path: str) -> tuple[str, str]:
        node, sep, iface = ref.partition(":")
        if not sep or not node or not iface:
            raise self.fail(path, f"expected 'node:interface', got {ref!r}")
        if node not in self.topo.nodes:
            if node in self.topo.switches:
                raise self.fail(path, f"{node!r} is a switch; plug nodes into it with [[switches.{node}.ports]]")
            known = ", ".join(sorted(self.topo.nodes)) or "none"
            raise self.fail(path, f"unknown node {node!r} (nodes: {known})")
        if not _valid_ifname(iface):
            raise self.fail(
                path, f"interface name {iface!r}: expected 1-15 characters of letters, digits, '_', '.', '-'"
            )
        return node, iface

    def attach(self, node: str, iface: str, segment: Segment, peer: str, path: str) -> None:
        if (node, iface) in self.attached:
            other = self.attached[(node, iface)][2]
            raise self.fail(path, f"interface {node}:{iface} is already connected at {other}")
        self.attached[(node, iface)] = (segment.id, peer, path)
        segment.members.append((node, iface))

    def collect_segments(self) -> None:
        names: set[str] = set()
        for i, link in enumerate(self.topo.links):
            path = f"links[{i}]"
            a = self.endpoint(link.endpoints[0], f"{path}.endpoints[0]")
            b = self.endpoint(link.endpoints[1], f"{path}.endpoints[1]")
            if a == b:
                raise self.fail(f"{path}.endpoints", "a link needs two different interfaces")
            name = link.name or f"{a[0]}-{a[1]}--{b[0]}-{b[1]}"
            if name in names:
                raise self.fail(f"{path}.name", f"duplicate link name {name!r}")
            names.add(name)
            self.link_names.append(name)
            seg = Segment(f"link:{name}", path, _subnets(link.ipv4, link.ipv6))
            self.segments[seg.id] = seg
            self.attach(*a, seg, f"{b[0]}:{b[1]}", f"{path}.endpoints[0]")
            self.attach(*b, seg, f"{a[0]}:{a[1]}", f"{path}.endpoints[1]")
        for sw_name, sw in self.topo.switches.items():
            if sw_name in self.topo.nodes:
                raise self.fail(f"switches.{sw_name}", f"name {sw_name!r} is used by a node too")
            for vid in sorted(sw.vlans):
                vlan = sw.vlans[vid]
                seg = Segment(f"vlan:{sw_name}:{vid}", f"switches.{sw_name}.vlans.{vid}", _subnets(vlan.ipv4, vlan.ipv6))
                self.segments[seg.id] = seg
            seen: set[int] = set()
            for j, port in enumerate(sw.ports):
                path = f"switches.{sw_name}.ports[{j}]"
                if port.port in seen:
                    raise self.fail(f"{path}.port", f"port {port.port} is listed twice")
                seen.add(port.port)
                if port.vlan not in sw.vlans:
                    raise self.fail(f"{path}.vlan", f"VLAN {port.vlan} is not among the switch's vlans {sorted(sw.vlans)}")
                if port.connect is not None:
                    node, iface = self.endpoint(port.connect, f"{path}.connect")
                    self.attach(node, iface, self.segments[f"vlan:{sw_name}:{port.vlan}"], f"{sw_name}:{port.port}", f"{path}.connect")
        for node_name, node in self.topo.nodes.items():
            for iface in node.interfaces:
                if (node_name, iface) not in self.attached:
                    raise self.fail(
                        f"nodes.{node_name}.interfaces.{iface}",
                        "interface is not connected: name it in a link's endpoints or a switch port's connect",
                    )

    # -- addresses ------------------------------------------------------------
    def assign_addresses(self) -> dict[tuple[str, str], list[IPInterface]]:
        auto = set(self.topo.addressing.auto) | ({"ipv4", "ipv6"} if self.topo.addressing.dual_stack else set())
        pools = {
            4: self.topo.addressing.ipv4_pool.subnets(new_prefix=max(24, self.topo.addressing.ipv4_pool.prefixlen)),
            6: self.topo.addressing.ipv6_pool.subnets(new_prefix=max(64, self.topo.addressing.ipv6_pool.prefixlen)),
        }
        next(pools[4])  # keep x.x.0.0/24 free: segments start at .1.0
        next(pools[6])
        used: dict[Any, str] = {}
        result: dict[tuple[str, str], list[IPInterface]] = {k: [] for k in self.attached}
        # explicit addresses first, so automatic ones never collide with them
        for (node, iface), (_seg_id, _peer, _p) in self.attached.items():
            spec = self.topo.nodes[node].interfaces.get(iface)
            if spec is None:
                continue
            for fam, addrs in ((4, spec.ipv4), (6, spec.ipv6)):
                for k, addr in enumerate(addrs or []):
                    path = f"nodes.{node}.interfaces.{iface}.ipv{fam}[{k}]"
                    self.check_host_address(addr, path)
                    if addr.ip in used:
                        raise self.fail(path, f"address {addr.ip} is already used by {used[addr.ip]}")
                    used[addr.ip] = f"{node}:{iface}"
                    result[(node, iface)].append(addr)
        for seg in self.segments.values():
            for fam in (4, 6):
                explicit = [a for m in seg.members for a in result[m] if a.version == fam]
                subnet = seg.subnets.get(fam)
                for m in seg.members:
                    for k, a in enumerate(x for x in result[m] if x.version == fam):
                        ref = subnet or (explicit[0].network if explicit else None)
                        if ref is not None and a.network != ref:
                            where = f"the subnet {ref} of {seg.path}" if subnet else f"{ref}, the subnet of the other addresses on {seg.path}"
                            raise self.fail(
                                f"nodes.{m[0]}.interfaces.{m[1]}.ipv{fam}[{k}]",
                                f"address {a} is outside {where}",
                            )
                needs = [m for m in seg.members if not any(a.version == fam for a in result[m])]
                if not needs or (f"ipv{fam}" not in auto and subnet is None):
                    continue
                if subnet is None:
                    subnet = explicit[0].network if explicit else self.next_pool_subnet(pools[fam], used, fam)
                hosts = (h for h in subnet.hosts() if h not in used)
                for m in needs:
                    host = next(hosts, None)
                    if host is None:
                        raise self.fail(seg.path, f"subnet {subnet} has no free address left for {m[0]}:{m[1]}")
                    used[host] = f"{m[0]}:{m[1]}"
                    result[m].append(ipaddress.ip_interface(f"{host}/{subnet.prefixlen}"))
                seg.subnets[fam] = subnet
            for fam in (4, 6):
                if fam not in seg.subnets:
                    addrs = [a for m in seg.members for a in result[m] if a.version == fam]
                    if addrs:
                        seg.subnets[fam] = addrs[0].network
        for key in result:
            result[key].sort(key=lambda a: a.version)
        return result

    def next_pool_subnet(self, pool: Any, used: dict[Any, str], fam: int) -> IPNetwork:
        taken = [s for s in self.segments.values() if fam in s.subnets]
        for candidate in pool:
            if not any(candidate.overlaps(s.subnets[fam]) for s in taken) and not any(
                ip in candidate for ip in used if ip.version == fam
            ):
                return candidate
        raise self.fail("addressing", f"the IPv{fam} pool has no free subnet left")

    def check_host_address(self, addr: IPInterface, path: str) -> None:
        net = addr.network
        if addr.version == 4 and net.prefixlen < 31 and addr.ip in (net.network_address, net.broadcast_address):
            raise self.fail(path, f"{addr} is the network or broadcast address of {net}; expected a host address")
        if addr.ip.is_loopback or addr.ip.is_multicast or addr.ip.is_unspecified or addr.ip.is_link_local:
            raise self.fail(path, f"{addr}: expected a unicast address (not loopback, multicast or link-local)")

    # -- routing -------------------------------------------------------------------
    def gateways(self, node: str, seg: Segment, addrs: dict[tuple[str, str], list[IPInterface]]) -> dict[str, str]:
        others = [m for m in seg.members if m[0] != node]
        routers = [m for m in others if self.topo.nodes[m[0]].kind == "router"]
        chosen = routers[0] if routers else (others[0] if len(others) == 1 else None)
        if chosen is None:
            return {}
        return {str(a.version): str(a.ip) for a in reversed(addrs[chosen])}

    def static_routes(self, node: str, addrs: dict[tuple[str, str], list[IPInterface]]) -> list[ResolvedRoute]:
        """Routes of a router to every subnet it is not on, through routers only (BFS)."""
        by_node: dict[str, list[Segment]] = {}
        for seg in self.segments.values():
            for m in seg.members:
                by_node.setdefault(m[0], []).append(seg)
        local = {s.id for s in by_node.get(node, [])}
        first_hop: dict[str, tuple[str, str, str]] = {}  # node -> (iface, neighbour, neighbour iface)
        queue = deque([node])
        while queue:
            cur = queue.popleft()
            if cur != node and self.topo.nodes[cur].kind != "router":
                continue
            for seg in by_node.get(cur, []):
                for m in seg.members:
                    if m[0] == node or m[0] in first_hop:
                        continue
                    if cur == node:
                        mine = next(x for x in seg.members if x[0] == node)
                        first_hop[m[0]] = (mine[1], m[0], m[1])
                    else:
                        first_hop[m[0]] = first_hop[cur]
                    queue.append(m[0])
        routes = []
        for seg in self.segments.values():
            if seg.id in local:
                continue
            # only a router on that segment can forward into it; a host would drop the packets
            hop = next(
                (first_hop[m[0]] for m in seg.members if m[0] in first_hop and self.topo.nodes[m[0]].kind == "router"),
                None,
            )
            if hop is None:
                continue
            dev, nbr, nbr_if = hop
            for fam, subnet in sorted(seg.subnets.items()):
                via = next((a for a in addrs[(nbr, nbr_if)] if a.version == fam), None)
                if via is not None:
                    routes.append(ResolvedRoute(str(subnet), str(via.ip), dev))
        return routes

    def run(self) -> Resolved:
        self.collect_segments()
        addrs = self.assign_addresses()
        nodes: dict[str, ResolvedNode] = {}
        for name, node in self.topo.nodes.items():
            mptcp: Mptcp = self.topo.node_mptcp(name)
            ifaces = []
            next_id = 1
            for (n, iface), (seg_id, peer, _path) in self.attached.items():
                if n != name:
                    continue
                spec = node.interfaces.get(iface)
                role = spec.mptcp if spec and spec.mptcp is not None else mptcp.endpoints
                flags = sorted(parse_mptcp_role(role)) if mptcp.enabled else []
                ids = {}
                if flags:
                    for a in addrs[(n, iface)]:
                        ids[str(a.ip)] = next_id
                        next_id += 1
                ifaces.append(
                    ResolvedInterface(
                        node=name, name=iface, addresses=[str(a) for a in addrs[(n, iface)]], flags=flags,
                        endpoint_ids=ids, mtu=spec.mtu if spec else None, segment=seg_id,
                        gateways=self.gateways(name, self.segments[seg_id], addrs), peer=peer,
                    )
                )
            if next_id - 1 > MAX_ENDPOINTS:
                raise self.fail(
                    f"nodes.{name}",
                    f"{next_id - 1} MPTCP endpoints (one per address of each MPTCP interface); "
                    f"the kernel allows at most {MAX_ENDPOINTS}: set mptcp = 'off' on some interfaces",
                )
            routes = self.static_routes(name, addrs) if node.kind == "router" else []
            sysctls = {k: str(v) for k, v in node.sysctls.items()}
            nodes[name] = ResolvedNode(name, node.kind, mptcp.model_dump(), sysctls, ifaces, routes)
        links = [
            ResolvedLink(name, tuple(link.endpoints[0].split(":", 1)), tuple(link.endpoints[1].split(":", 1)))
            for name, link in zip(self.link_names, self.topo.links, strict=True)
        ]
        switches = {
            name: ResolvedSwitch(
                name, sorted(sw.vlans),
                [
                    ResolvedPort(p.port, p.vlan, *(p.connect.split(":", 1) if p.connect else (None, None)))
                    for p in sw.ports
                ],
            )
            for name, sw in self.topo.switches.items()
        }
        return Resolved(self.topo.name, self.topo.description, nodes, links, switches)


def _subnets(v4: ipaddress.IPv4Network | None, v6: ipaddress.IPv6Network | None) -> dict[int, IPNetwork]:
    return {fam: net for fam, net in ((4, v4), (6, v6)) if net is not None}


def _valid_ifname(name: str) -> bool:
    return bool(re.match(IFNAME_PATTERN, name))


def resolve(topo: Topology, source: str = "<topology>") -> Resolved:
    """Check references and decide addresses, gateways, endpoint ids and routes."""
    return _Resolver(topo, source).run()
