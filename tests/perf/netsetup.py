"""Two namespaces joined by two veth pairs, MPTCP endpoints set inside them (test helper)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def tc(ns: str, *args: str) -> None:
    subprocess.run(["tc", "-n", ns, *args], check=True, capture_output=True, text=True)


def set_sysctl(ns: str, key: str, value: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}"], check=True,
                   capture_output=True, text=True)


@dataclass
class TwoPaths:
    client: str
    server: str
    client_addrs: tuple[str, str] = ("10.0.1.1", "10.0.2.1")
    server_addrs: tuple[str, str] = ("10.0.1.2", "10.0.2.2")
    client_ifs: tuple[str, str] = ("c1", "c2")
    server_ifs: tuple[str, str] = ("s1", "s2")

    def iface_of(self, addr: str) -> tuple[str, str]:
        """(namespace, interface) holding ADDR."""
        for ns, addrs, ifs in ((self.client, self.client_addrs, self.client_ifs),
                               (self.server, self.server_addrs, self.server_ifs)):
            if addr in addrs:
                return ns, ifs[addrs.index(addr)]
        raise KeyError(addr)


def two_paths(factory, *, client_endpoint: str = "subflow", userspace_client: bool = False) -> TwoPaths:  # noqa: ANN001
    """Client and server namespaces, veth pairs c1-s1 (10.0.1.0/24) and c2-s2 (10.0.2.0/24).

    The client gets a subflow endpoint on 10.0.2.1 dev c2 (unless it uses the userspace PM)
    and a per-source routing rule, so the second subflow leaves through c2; limits allow 2.
    """
    c, s = factory("c"), factory("s")
    net = TwoPaths(c, s)
    for i in (0, 1):
        ip("link", "add", net.client_ifs[i], "netns", c, "type", "veth", "peer", "name", net.server_ifs[i], "netns", s)
        ip("-n", c, "addr", "add", f"{net.client_addrs[i]}/24", "dev", net.client_ifs[i])
        ip("-n", s, "addr", "add", f"{net.server_addrs[i]}/24", "dev", net.server_ifs[i])
        ip("-n", c, "link", "set", net.client_ifs[i], "up")
        ip("-n", s, "link", "set", net.server_ifs[i], "up")
    for ns in (c, s):
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "mptcp", "limits", "set", "subflows", "2", "add_addr_accepted", "2")
        set_sysctl(ns, "net.ipv4.tcp_no_metrics_save", "1")
    # source-based routing: anything from 10.0.2.1 leaves through c2
    ip("-n", c, "rule", "add", "from", net.client_addrs[1], "table", "102")
    ip("-n", c, "route", "add", "10.0.0.0/16", "dev", net.client_ifs[1], "table", "102")
    if userspace_client:
        set_sysctl(c, "net.mptcp.path_manager", "userspace")
    else:
        ip("-n", c, "mptcp", "endpoint", "add", net.client_addrs[1], "dev", net.client_ifs[1], client_endpoint)
    return net


def link_stats(ns: str, dev: str) -> dict[str, int]:
    """The interface's own counters (tx_bytes, rx_bytes, ...) from `ip -j -s link`."""
    data = json.loads(ip("-n", ns, "-j", "-s", "link", "show", "dev", dev))[0]
    st = data["stats64"]
    return {"tx_bytes": st["tx"]["bytes"], "rx_bytes": st["rx"]["bytes"],
            "tx_packets": st["tx"]["packets"], "rx_packets": st["rx"]["packets"]}
