"""Carry out a plan, all or nothing: on any failure every namespace made so far goes.

Every operation lives inside a lab namespace, so deleting the namespaces undoes all of
them; the state file lists each namespace before it is created, so even a SIGKILL here
leaves a record that `clean` can act on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mptcplab.errors import LabError
from mptcplab.kernel import netns, sysctl
from mptcplab.kernel.iproute import IPRoute
from mptcplab.lab.state import LabState
from mptcplab.plan import ops as o


class Applier:
    """Holds one rtnetlink and one mptcp_pm socket per namespace while a plan runs."""

    def __init__(self, state: LabState, progress: Callable[[int, int], None] | None = None,
                 exist_ok: bool = False) -> None:
        self.state = state
        self.exist_ok = exist_ok
        self.progress = progress
        self._ipr: dict[str, IPRoute] = {}
        self._pm: dict[str, object] = {}

    def ipr(self, ns: str) -> IPRoute:
        if ns not in self._ipr:
            self._ipr[ns] = IPRoute(ns, self.exist_ok)
        return self._ipr[ns]

    def pm(self, ns: str):  # noqa: ANN201 - MptcpPM, imported lazily
        if ns not in self._pm:
            from mptcplab.kernel.mptcp_pm import MptcpPM

            self._pm[ns] = MptcpPM(ns)
        return self._pm[ns]

    def close(self) -> None:
        for handle in [*self._ipr.values(), *self._pm.values()]:
            handle.close()
        self._ipr.clear()
        self._pm.clear()

    def run(self, plan: list[o.Op]) -> None:
        creates = [op.ns for op in plan if isinstance(op, o.CreateNetns)]
        self.state.namespaces = list(dict.fromkeys([*self.state.namespaces, *creates]))
        self.state.save()
        try:
            for i, op in enumerate(plan):
                self.apply(op)
                if self.progress:
                    self.progress(i + 1, len(plan))
            self.wait_carrier(creates)
        finally:
            self.close()

    def wait_carrier(self, namespaces: list[str], timeout: float = 5.0) -> None:
        """Wait until every interface reports operstate UP: the kernel activates a veth's
        queue a moment after its carrier comes on, and packets sent before are lost."""
        pending = list(namespaces)
        deadline = time.monotonic() + timeout
        while pending:
            pending = [ns for ns in pending if any(
                lk["kind"] == "veth" and lk["up"] and lk["state"] != "UP" for lk in self.ipr(ns).links()
            )]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise LabError(f"interfaces in {', '.join(pending)} did not come up within {timeout:g}s")
            time.sleep(0.01)

    def apply(self, op: o.Op) -> None:
        match op:
            case o.CreateNetns():
                netns.create(op.ns)
            case o.SetSysctl():
                sysctl.write(op.ns, op.key, op.value)
            case o.CreateBridge():
                self.ipr(op.ns).add_bridge(op.name)
            case o.CreateVeth():
                self.ipr(op.ns).add_veth(op.ifname, op.peer_ns, op.peer_ifname)
            case o.SetMaster():
                self.ipr(op.ns).set_master(op.ifname, op.master)
            case o.SetMtu():
                self.ipr(op.ns).set_link(op.ifname, "set mtu of", mtu=op.mtu)
            case o.LinkUp():
                self.ipr(op.ns).set_link(op.ifname, "bring up", state="up")
            case o.AddAddress():
                self.ipr(op.ns).add_address(op.ifname, op.cidr)
            case o.AddRoute():
                self.ipr(op.ns).add_route(op.dst, op.ifname, op.via, op.table, op.family)
            case o.AddRule():
                self.ipr(op.ns).add_rule(op.src, op.table, op.priority, op.family)
            case o.SetMptcpLimits():
                self.pm(op.ns).set_limits(op.subflows, op.add_addr_accepted)
            case o.AddEndpoint():
                ifindex = self.ipr(op.ns).index(op.ifname)
                self.pm(op.ns).add_endpoint(op.addr, id=op.id, flags=op.flags, ifindex=ifindex)
            case _:
                raise TypeError(f"no way to apply {type(op).__name__}")
