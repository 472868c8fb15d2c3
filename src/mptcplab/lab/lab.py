"""The Lab: the Python API over a running MPTCP test network.

    with Lab("openwrt-vde") as lab:          # builds it; tears it down on exit
        lab.run("a", ["ping", "-c1", lab.address("b")])

`Lab.attach(name)` returns a handle on a lab some earlier command built.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from mptcplab.errors import LabError, MptcplabError
from mptcplab.kernel import netns, sysctl
from mptcplab.lab import state as state_mod
from mptcplab.lab.state import LabState
from mptcplab.model.load import LoadedTopology, load_topology
from mptcplab.model.resolve import Resolved
from mptcplab.plan.compile import KernelFacts, compile_plan
from mptcplab.plan.ops import Op


def kernel_facts() -> KernelFacts:
    """What the plan needs to know about this kernel (read-only look at the root namespace)."""
    available = sysctl.read(None, "net.mptcp.available_schedulers")
    return KernelFacts(
        path_manager_sysctl=sysctl.read(None, "net.mptcp.path_manager") is not None,
        schedulers=tuple(available.split()) if available else (),
    )


class Lab:
    """A lab built from a topology (file path, preset name, or loaded topology)."""

    def __init__(self, topology: str | LoadedTopology | None = None, name: str | None = None) -> None:
        self.topology = topology if isinstance(topology, LoadedTopology) else load_topology(topology)
        self.name = state_mod.check_lab_name(name or self.topology.default_lab_name)
        self.state: LabState | None = None

    # -- building -------------------------------------------------------------
    def plan(self, facts: KernelFacts | None = None) -> list[Op]:
        return compile_plan(self.topology.resolved, self.name, facts)

    def _preflight(self, facts: KernelFacts) -> None:
        if os.geteuid() != 0:
            raise LabError("building a lab needs root (network namespaces); run with sudo")
        if not os.path.exists("/proc/sys/net/mptcp/enabled"):
            raise LabError("this kernel has no MPTCP (no /proc/sys/net/mptcp); see `mptcplab doctor`")
        for node in self.topology.resolved.nodes.values():
            sched = node.mptcp.get("scheduler")
            if sched and facts.schedulers and sched not in facts.schedulers:
                raise LabError(
                    f"{self.topology.source}: nodes.{node.name}.mptcp.scheduler: {sched!r} is not "
                    f"available in this kernel (available: {', '.join(facts.schedulers)})"
                )
        for name in [*self.topology.resolved.nodes, *self.topology.resolved.switches]:
            ns = state_mod.netns_name(self.name, name)
            if netns.exists(ns):
                raise LabError(f"network namespace {ns!r} already exists; remove it or choose another --name")

    def up(self, progress: Callable[[int, int], None] | None = None) -> Lab:
        """Build the lab; on any failure (or interrupt) remove everything made so far."""
        from mptcplab.lab.apply import Applier
        from mptcplab.lab.teardown import destroy

        facts = kernel_facts()
        self._preflight(facts)
        plan = self.plan(facts)
        directory = state_mod.STATE_ROOT / self.name
        state_mod.STATE_ROOT.mkdir(parents=True, exist_ok=True)
        try:
            directory.mkdir()
        except FileExistsError:
            raise LabError(f"a lab named {self.name!r} already exists; `mptcplab down --lab {self.name}` or choose --name") from None
        st = LabState(self.name, self.topology.source, self.topology.resolved.to_dict())
        st.save()
        self.state = st
        try:
            Applier(st, progress).run(plan)
        except BaseException as exc:
            destroy(st)
            self.state = None
            if isinstance(exc, MptcplabError):
                raise LabError(f"up failed: {exc}; everything created was removed") from None
            raise
        st.complete = True
        st.save()
        return self

    def down(self) -> list[str]:
        """Remove everything the lab made. Safe to call twice."""
        from mptcplab.lab.teardown import destroy

        if self.state is None:
            return []
        removed = destroy(self.state)
        self.state = None
        return removed

    def __enter__(self) -> Lab:
        if self.state is None:
            self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    @classmethod
    def attach(cls, name: str | None = None) -> Lab:
        """A handle on a running lab (the only one, when NAME is None)."""
        st = state_mod.resolve(name)
        lab = cls.__new__(cls)
        lab.state = st
        lab.name = st.name
        lab.topology = LoadedTopology(st.source, None, Resolved.from_dict(st.topology))  # type: ignore[arg-type]
        return lab

    # -- using ----------------------------------------------------------------------
    @property
    def resolved(self) -> Resolved:
        return self.topology.resolved

    def _state(self) -> LabState:
        if self.state is None:
            raise LabError(f"lab {self.name!r} is not up")
        return self.state

    def netns(self, node: str) -> str:
        return self._state().netns(node)

    def address(self, node: str, family: int = 4) -> str:
        return self._state().address(node, family)

    def run(self, node: str, argv: Sequence[str], *, check: bool = False, timeout: float | None = 60,
            **kwargs: Any) -> subprocess.CompletedProcess:
        """Run ARGV inside NODE and wait (text output captured unless told otherwise)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(netns.argv(self.netns(node), argv), check=check, timeout=timeout, **kwargs)

    def popen(self, node: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        """Start ARGV inside NODE; the caller owns the process and stops it by its pid."""
        return subprocess.Popen(netns.argv(self.netns(node), argv), **kwargs)

    def set_port_vlan(self, switch: str, port: int, vlan: int) -> int:
        """Move switch port PORT to VLAN (the seed's `port/setvlan`). Returns the old VLAN."""
        from mptcplab.kernel.iproute import IPRoute

        st = self._state()
        sw = self.resolved.switches.get(switch)
        if sw is None:
            raise LabError(f"lab {self.name!r} has no switch {switch!r} (switches: {', '.join(self.resolved.switches) or 'none'})")
        rport = next((p for p in sw.ports if p.port == port), None)
        if rport is None:
            raise LabError(f"switch {switch!r} has no port {port} (ports: {', '.join(str(p.port) for p in sw.ports)})")
        if vlan not in sw.vlans:
            raise LabError(f"switch {switch!r} has no VLAN {vlan} (VLANs: {', '.join(map(str, sw.vlans))})")
        ipr = IPRoute(st.netns(switch))
        try:
            ipr.set_master(rport.ifname, f"vlan{vlan}")
        finally:
            ipr.close()
        old = st.extra.setdefault("port_vlans", {}).get(f"{switch}:{port}", rport.vlan)
        st.extra["port_vlans"][f"{switch}:{port}"] = vlan
        st.extra.setdefault("events", []).append({"time": time.time(), "event": "port_vlan", "switch": switch, "port": port, "vlan": vlan})
        st.save()
        return old

    def port_vlan(self, switch: str, port: int) -> int:
        sw = self.resolved.switches[switch]
        default = next(p.vlan for p in sw.ports if p.port == port)
        return self._state().extra.get("port_vlans", {}).get(f"{switch}:{port}", default)

    def set_link_state(self, name: str, up: bool) -> None:
        """Cut (down) or restore (up) link NAME: a link name, or 'node:iface'."""
        from mptcplab.kernel.iproute import IPRoute
        from mptcplab.lab.apply import Applier
        from mptcplab.plan import ops as o

        st = self._state()
        ends = self._link_ends(name)
        for node, iface in ends:
            ipr = IPRoute(st.netns(node))
            try:
                ipr.set_link(iface, "bring up" if up else "bring down", state="up" if up else "down")
            finally:
                ipr.close()
        if up:
            # taking a device down flushes its IPv6 addresses and every route through it:
            # put back what the plan made on these interfaces, then wait for carrier
            wanted = {(st.netns(n), i) for n, i in ends}
            redo = [op for op in self.plan() if isinstance(op, o.AddAddress | o.AddRoute) and (op.ns, op.ifname) in wanted]
            applier = Applier(st, exist_ok=True)
            try:
                for op in redo:
                    applier.apply(op)
                applier.wait_carrier(sorted({ns for ns, _ in wanted}))
            finally:
                applier.close()
        st.extra.setdefault("events", []).append({"time": time.time(), "event": "link_up" if up else "link_down", "link": name})
        st.save()

    def _link_ends(self, name: str) -> list[tuple[str, str]]:
        for link in self.resolved.links:
            if link.name == name:
                return [link.a, link.b]
        node, _, iface = name.partition(":")
        if node in self.resolved.nodes and any(i.name == iface for i in self.resolved.nodes[node].interfaces):
            for sw in self.resolved.switches.values():
                for p in sw.ports:
                    if (p.node, p.iface) == (node, iface):
                        return [(node, iface), (sw.name, p.ifname)]
            return [(node, iface)]
        known = [lk.name for lk in self.resolved.links] + [
            f"{n.name}:{i.name}" for n in self.resolved.nodes.values() for i in n.interfaces
        ]
        raise LabError(f"lab {self.name!r} has no link {name!r} (links: {', '.join(known)})")

    def endpoints(self, node: str) -> list[dict[str, Any]]:
        """NODE's MPTCP endpoints as the kernel reports them, with interface names."""
        from mptcplab.kernel.iproute import IPRoute
        from mptcplab.kernel.mptcp_pm import MptcpPM

        ns = self.netns(node)
        with MptcpPM(ns) as pm:
            eps = pm.endpoints()
        ipr = IPRoute(ns)
        try:
            names = {lk["index"]: lk["name"] for lk in ipr.links()}
        finally:
            ipr.close()
        return [{**e.to_dict(), "dev": names.get(e.ifindex)} for e in sorted(eps, key=lambda e: e.id)]

    def status(self) -> dict[str, Any]:
        """Nodes with interfaces, addresses, link state and endpoints, read from the kernel."""
        from mptcplab.kernel.iproute import IPRoute

        st = self._state()
        nodes: dict[str, Any] = {}
        for name in [*self.resolved.nodes, *self.resolved.switches]:
            ns = st.netns(name)
            ipr = IPRoute(ns)
            try:
                links = {lk["index"]: lk for lk in ipr.links()}
                for idx, cidr in ipr.addresses():
                    links[idx].setdefault("addresses", []).append(cidr)
            finally:
                ipr.close()
            names = {idx: lk["name"] for idx, lk in links.items()}
            ifaces = []
            for lk in links.values():
                if lk["name"] == "lo":
                    continue
                lk["master"] = names.get(lk["master"]) if lk["master"] else None
                lk.setdefault("addresses", [])
                ifaces.append(lk)
            entry: dict[str, Any] = {"netns": ns, "kind": "switch" if name in self.resolved.switches else self.resolved.nodes[name].kind, "interfaces": ifaces}
            if name in self.resolved.nodes and self.resolved.nodes[name].mptcp["enabled"]:
                entry["endpoints"] = self.endpoints(name)
            nodes[name] = entry
        return {"lab": self.name, "source": st.source, "complete": st.complete, "nodes": nodes}
