"""rtnetlink through pyroute2, one socket per namespace (links, addresses, routes, rules).

pyroute2 is imported here only, lazily, so commands that never touch the kernel stay fast.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from typing import Any

from mptcplab.errors import KernelError
from mptcplab.kernel import netns

IFA_F_NODAD = 0x02
RTPROT_BOOT = 3  # what `ip route add` uses
RT_SCOPE_LINK = 253
RT_SCOPE_UNIVERSE = 0


class IPRoute:
    """An rtnetlink socket inside namespace NS, with an interface-index cache."""

    def __init__(self, ns: str | None, exist_ok: bool = False) -> None:
        from pyroute2 import IPRoute as _IPRoute

        self.ns = ns
        self.exist_ok = exist_ok  # adding what is already there is not an error
        with netns.enter(ns):
            self._ipr = _IPRoute()
        self._index: dict[str, int] = {}

    def close(self) -> None:
        self._ipr.close()

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            return fn(*args, **kwargs)
        except NetlinkError as exc:
            if self.exist_ok and exc.code == errno.EEXIST:
                return None
            raise KernelError(f"{what} in {self.ns}: {os.strerror(exc.code)}") from None

    def index(self, ifname: str) -> int:
        if ifname not in self._index:
            msgs = self._call(f"find interface {ifname}", self._ipr.link, "get", ifname=ifname)
            self._index[ifname] = msgs[0]["index"]
        return self._index[ifname]

    def add_bridge(self, name: str) -> None:
        self._call(f"add bridge {name}", self._ipr.link, "add", ifname=name, kind="bridge")

    def add_veth(self, ifname: str, peer_ns: str, peer_ifname: str) -> None:
        fd = os.open(netns.path(peer_ns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._call(
                f"add veth {ifname} <-> {peer_ns}:{peer_ifname}", self._ipr.link, "add",
                ifname=ifname, kind="veth", peer={"ifname": peer_ifname, "net_ns_fd": fd},
            )
        finally:
            os.close(fd)

    def set_link(self, ifname: str, what: str, **attrs: Any) -> None:
        self._call(f"{what} {ifname}", self._ipr.link, "set", index=self.index(ifname), **attrs)

    def set_master(self, ifname: str, master: str) -> None:
        self.set_link(ifname, f"set master {master} of", master=self.index(master))

    def add_address(self, ifname: str, cidr: str) -> None:
        addr = ipaddress.ip_interface(cidr)
        kwargs: dict[str, Any] = {"index": self.index(ifname), "address": str(addr.ip), "prefixlen": addr.network.prefixlen}
        if addr.version == 6:
            kwargs["flags"] = IFA_F_NODAD
        self._call(f"add address {cidr} to {ifname}", self._ipr.addr, "add", **kwargs)

    def add_route(self, dst: str, ifname: str, via: str | None, table: int | None, family: int) -> None:
        kwargs: dict[str, Any] = {
            "family": 2 if family == 4 else 10, "oif": self.index(ifname), "proto": RTPROT_BOOT,
            "scope": RT_SCOPE_UNIVERSE if via else RT_SCOPE_LINK,
        }
        if dst != "default":
            net = ipaddress.ip_network(dst)
            kwargs.update(dst=str(net.network_address), dst_len=net.prefixlen)
        if via:
            kwargs["gateway"] = via
        if table is not None:
            kwargs["table"] = table
        self._call(f"add route {dst} via {via or ifname}", self._ipr.route, "add", **kwargs)

    def add_rule(self, src: str, table: int, priority: int, family: int) -> None:
        self._call(
            f"add rule from {src} table {table}", self._ipr.rule, "add",
            family=2 if family == 4 else 10, src=src, src_len=32 if family == 4 else 128,
            table=table, priority=priority,
        )

    def links(self) -> list[dict[str, Any]]:
        """Interfaces with name, index, state, mtu, master, counters: what `status` shows."""
        out = []
        for msg in self._call("list interfaces", self._ipr.get_links):
            stats = msg.get_attr("IFLA_STATS64") or {}
            info = msg.get_attr("IFLA_LINKINFO")
            out.append({
                "name": msg.get_attr("IFLA_IFNAME"),
                "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
                "index": msg["index"],
                "state": msg.get_attr("IFLA_OPERSTATE"),
                "up": bool(msg["flags"] & 1),
                "mtu": msg.get_attr("IFLA_MTU"),
                "master": msg.get_attr("IFLA_MASTER"),
                "rx_bytes": stats.get("rx_bytes", 0), "tx_bytes": stats.get("tx_bytes", 0),
                "rx_packets": stats.get("rx_packets", 0), "tx_packets": stats.get("tx_packets", 0),
            })
        return out

    def addresses(self) -> list[tuple[int, str]]:
        """(ifindex, CIDR) of every global address."""
        return [
            (m["index"], f"{m.get_attr('IFA_ADDRESS')}/{m['prefixlen']}")
            for m in self._call("list addresses", self._ipr.get_addr)
            if m["scope"] == 0
        ]
