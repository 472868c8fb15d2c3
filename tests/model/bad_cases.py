"""Malformed topology files: (id, TOML text, field path the error must name, message part).

Shared by the parser tests and the CLI tests; each is small and wrong in exactly one way.
"""

from __future__ import annotations

OK_LINK = '[[links]]\nendpoints = ["a:eth0", "b:eth0"]\n'
TWO_NODES = "[nodes.a]\n[nodes.b]\n"

BAD_TOPOLOGIES: list[tuple[str, str, str, str]] = [
    ("bad-toml-syntax", "[nodes.a\n", "", "not valid TOML"),
    ("duplicate-key", "[nodes.a]\nkind = 'host'\nkind = 'router'\n" + "[nodes.b]\n" + OK_LINK, "", "not valid TOML"),
    ("duplicate-table", TWO_NODES + "[nodes.a]\n" + OK_LINK, "", "not valid TOML"),
    ("unknown-top-field", "colour = 'blue'\n" + TWO_NODES + OK_LINK, "colour", "unknown field"),
    ("unknown-node-field", "[nodes.a]\nkinds = 'host'\n[nodes.b]\n" + OK_LINK, "nodes.a.kinds", "unknown field"),
    ("unknown-iface-field", TWO_NODES + "[nodes.a.interfaces.eth0]\nipv5 = '1.2.3.4/24'\n" + OK_LINK,
     "nodes.a.interfaces.eth0.ipv5", "unknown field"),
    ("no-nodes", "name = 'x'\n", "nodes", "required field is missing"),
    ("wrong-type-kind", "[nodes.a]\nkind = 3\n[nodes.b]\n" + OK_LINK, "nodes.a.kind", "'host' or 'router'"),
    ("wrong-type-endpoints", TWO_NODES + "[[links]]\nendpoints = 'a:eth0'\n", "links[0].endpoints", "tuple"),
    ("wrong-type-mtu", "[nodes.a]\ninterfaces.eth0 = { mtu = 'big' }\n[nodes.b]\n" + OK_LINK,
     "nodes.a.interfaces.eth0.mtu", "integer"),
    ("mtu-too-small", "[nodes.a]\ninterfaces.eth0 = { mtu = 40 }\n[nodes.b]\n" + OK_LINK,
     "nodes.a.interfaces.eth0.mtu", "68"),
    ("ifname-too-long", TWO_NODES + '[[links]]\nendpoints = ["a:averyveryverylongname", "b:eth0"]\n',
     "links[0].endpoints[0]", "1-15 characters"),
    ("ifname-too-long-declared", "[nodes.a]\ninterfaces.eth0123456789abcd = {}\n[nodes.b]\n"
     '[[links]]\nendpoints = ["a:eth0123456789abcd", "b:eth0"]\n', "nodes.a.interfaces.eth0123456789abcd", "1-15 characters"),
    ("ifname-odd-chars", TWO_NODES + '[[links]]\nendpoints = ["a:eth/0", "b:eth0"]\n',
     "links[0].endpoints[0]", "1-15 characters"),
    ("ifname-space", TWO_NODES + '[[links]]\nendpoints = ["a:eth0", "b:et h0"]\n',
     "links[0].endpoints[1]", "1-15 characters"),
    ("node-name-odd-chars", "[nodes.'a b']\n[nodes.b]\n", "nodes.a b", "'a b'"),
    ("address-outside-link-subnet", "[nodes.a]\ninterfaces.eth0 = { ipv4 = '10.1.0.1/24' }\n[nodes.b]\n"
     '[[links]]\nendpoints = ["a:eth0", "b:eth0"]\nipv4 = "10.2.0.0/24"\n',
     "nodes.a.interfaces.eth0.ipv4[0]", "outside the subnet 10.2.0.0/24"),
    ("two-subnets-on-one-link", "[nodes.a]\ninterfaces.eth0 = { ipv4 = '10.1.0.1/24' }\n"
     "[nodes.b]\ninterfaces.eth0 = { ipv4 = '10.3.0.2/24' }\n" + OK_LINK,
     "nodes.b.interfaces.eth0.ipv4[0]", "outside 10.1.0.0/24"),
    ("duplicate-address", "[nodes.a]\ninterfaces.eth0 = { ipv4 = '10.1.0.1/24' }\n"
     "[nodes.b]\ninterfaces.eth0 = { ipv4 = '10.1.0.1/24' }\n" + OK_LINK,
     "nodes.b.interfaces.eth0.ipv4[0]", "already used by a:eth0"),
    ("network-address-as-host", "[nodes.a]\ninterfaces.eth0 = { ipv4 = '10.1.0.0/24' }\n[nodes.b]\n" + OK_LINK,
     "nodes.a.interfaces.eth0.ipv4[0]", "network or broadcast"),
    ("broadcast-address-as-host", "[nodes.a]\ninterfaces.eth0 = { ipv4 = '10.1.0.255/24' }\n[nodes.b]\n" + OK_LINK,
     "nodes.a.interfaces.eth0.ipv4[0]", "network or broadcast"),
    ("loopback-address", "[nodes.a]\ninterfaces.eth0 = { ipv4 = '127.0.0.2/8' }\n[nodes.b]\n" + OK_LINK,
     "nodes.a.interfaces.eth0.ipv4[0]", "unicast"),
    ("not-an-address", "[nodes.a]\ninterfaces.eth0 = { ipv4 = '10.1.0.300/24' }\n[nodes.b]\n" + OK_LINK,
     "nodes.a.interfaces.eth0.ipv4[0]", "IPv4"),
    ("ipv6-in-ipv4-field", "[nodes.a]\ninterfaces.eth0 = { ipv4 = 'fd00::1/64' }\n[nodes.b]\n" + OK_LINK,
     "nodes.a.interfaces.eth0.ipv4[0]", "IPv4"),
    ("link-subnet-host-bits", TWO_NODES + '[[links]]\nendpoints = ["a:eth0", "b:eth0"]\nipv4 = "10.2.0.1/24"\n',
     "links[0].ipv4", "IPv4 network"),
    ("unknown-node-in-link", TWO_NODES + '[[links]]\nendpoints = ["a:eth0", "c:eth0"]\n',
     "links[0].endpoints[1]", "unknown node 'c'"),
    ("endpoint-without-colon", TWO_NODES + '[[links]]\nendpoints = ["a:eth0", "beth0"]\n',
     "links[0].endpoints[1]", "expected 'node:interface'"),
    ("endpoint-empty-iface", TWO_NODES + '[[links]]\nendpoints = ["a:", "b:eth0"]\n',
     "links[0].endpoints[0]", "expected 'node:interface'"),
    ("link-three-endpoints", TWO_NODES + '[[links]]\nendpoints = ["a:eth0", "b:eth0", "b:eth1"]\n',
     "links[0].endpoints", "at most 2"),
    ("link-to-itself", TWO_NODES + '[[links]]\nendpoints = ["a:eth0", "a:eth0"]\n',
     "links[0].endpoints", "two different interfaces"),
    ("switch-as-link-endpoint", TWO_NODES + "[switches.sw]\nvlans = { 1 = {} }\n"
     '[[links]]\nendpoints = ["a:eth0", "sw:p1"]\n', "links[0].endpoints[1]", "is a switch"),
    ("switch-named-like-node", TWO_NODES + "[switches.a]\nvlans = { 1 = {} }\n" + OK_LINK,
     "switches.a", "used by a node"),
    ("port-vlan-not-in-switch", TWO_NODES + "[switches.sw]\nvlans = { 1 = {}, 2 = {} }\n"
     "ports = [{ port = 1, vlan = 3, connect = 'a:eth0' }]\n", "switches.sw.ports[0].vlan", "VLAN 3"),
    ("same-port-twice", TWO_NODES + "[switches.sw]\nvlans = { 1 = {} }\n"
     "ports = [{ port = 1, vlan = 1, connect = 'a:eth0' }, { port = 1, vlan = 1, connect = 'b:eth0' }]\n",
     "switches.sw.ports[1].port", "listed twice"),
    ("vlan-out-of-range", TWO_NODES + "[switches.sw]\nvlans = { 4095 = {} }\n", "switches.sw.vlans.4095", "4094"),
    ("port-unknown-node", TWO_NODES + "[switches.sw]\nvlans = { 1 = {} }\n"
     "ports = [{ port = 1, vlan = 1, connect = 'z:eth0' }]\n", "switches.sw.ports[0].connect", "unknown node 'z'"),
    ("interface-connected-twice", TWO_NODES + OK_LINK + '[[links]]\nendpoints = ["a:eth0", "b:eth1"]\n',
     "links[1].endpoints[0]", "already connected at links[0].endpoints[0]"),
    ("interface-on-link-and-switch", TWO_NODES + OK_LINK + "[switches.sw]\nvlans = { 1 = {} }\n"
     "ports = [{ port = 1, vlan = 1, connect = 'b:eth0' }]\n", "switches.sw.ports[0].connect", "already connected"),
    ("unconnected-interface", "[nodes.a]\ninterfaces.eth9 = {}\n[nodes.b]\n" + OK_LINK,
     "nodes.a.interfaces.eth9", "not connected"),
    ("duplicate-link-name", TWO_NODES + '[[links]]\nname = "p"\nendpoints = ["a:eth0", "b:eth0"]\n'
     '[[links]]\nname = "p"\nendpoints = ["a:eth1", "b:eth1"]\n', "links[1].name", "duplicate link name"),
    ("too-many-endpoints", "[addressing]\ndual_stack = true\n" + TWO_NODES
     + "".join(f'[[links]]\nendpoints = ["a:e{i}", "b:e{i}"]\n' for i in range(5)),
     "nodes.a", "at most 8"),
    ("fullmesh-with-signal", "[nodes.a]\nmptcp.endpoints = 'fullmesh,signal'\n[nodes.b]\n" + OK_LINK,
     "nodes.a.mptcp.endpoints", "'fullmesh' cannot be combined with 'signal'"),
    ("backup-alone", "[nodes.a]\ninterfaces.eth0 = { mptcp = 'backup' }\n[nodes.b]\n" + OK_LINK,
     "nodes.a.interfaces.eth0.mptcp", "'backup' alone"),
    ("unknown-mptcp-flag", "[nodes.a]\ninterfaces.eth0 = { mptcp = 'subflow,turbo' }\n[nodes.b]\n" + OK_LINK,
     "nodes.a.interfaces.eth0.mptcp", "unknown MPTCP flag 'turbo'"),
    ("empty-mptcp-flags", "[nodes.a]\nmptcp.endpoints = ''\n[nodes.b]\n" + OK_LINK,
     "nodes.a.mptcp.endpoints", "expected endpoint flags"),
    ("bad-path-manager", "[mptcp]\npath_manager = 'netlink'\n" + TWO_NODES + OK_LINK,
     "mptcp.path_manager", "'kernel' or 'userspace'"),
    ("subflows-limit-over-8", "[mptcp]\nsubflows = 9\n" + TWO_NODES + OK_LINK, "mptcp.subflows", "8"),
    ("add-addr-limit-over-8", "[nodes.a]\nmptcp.add_addr_accepted = 12\n[nodes.b]\n" + OK_LINK,
     "nodes.a.mptcp.add_addr_accepted", "8"),
    ("negative-limit", "[mptcp]\nsubflows = -1\n" + TWO_NODES + OK_LINK, "mptcp.subflows", "0"),
    ("bad-scheduler-name", "[mptcp]\nscheduler = 'Round Robin'\n" + TWO_NODES + OK_LINK,
     "mptcp.scheduler", "'Round Robin'"),
    ("bad-sysctl-key", "[nodes.a]\nsysctls = { 'kernel.panic' = 1 }\n[nodes.b]\n" + OK_LINK,
     "nodes.a.sysctls.kernel.panic", "'kernel.panic'"),
    ("sysctl-key-path-escape", "[nodes.a]\nsysctls = { 'net/../../etc' = 1 }\n[nodes.b]\n" + OK_LINK,
     "nodes.a.sysctls.net/../../etc", "'net/../../etc'"),
    ("bad-sysctl-value", "[nodes.a]\nsysctls = { 'net.core.somaxconn' = '1;reboot' }\n[nodes.b]\n" + OK_LINK,
     "nodes.a.sysctls.net.core.somaxconn", "'1;reboot'"),
    ("bad-lab-name", "name = 'My Lab'\n" + TWO_NODES + OK_LINK, "name", "'My Lab'"),
    ("dual-stack-not-bool", "[addressing]\ndual_stack = 'maybe'\n" + TWO_NODES + OK_LINK,
     "addressing.dual_stack", "boolean"),
    ("bad-auto-family", "[addressing]\nauto = ['ipv5']\n" + TWO_NODES + OK_LINK,
     "addressing.auto[0]", "'ipv4' or 'ipv6'"),
]
