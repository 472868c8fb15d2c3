"""`check`: is MPTCP on in every node, does every path ping (from every source address,
IPv4 and IPv6), and does an unmodified client really use MPTCP to the lab's server?

Every probe is a real process in the lab (ping, curl), run in parallel; the verdicts
come from exit codes and from what the server read off the accepted socket.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import asdict, dataclass

from mptcplab.kernel import netns, sysctl
from mptcplab.lab.lab import Lab
from mptcplab.workloads.checkserver import NOT_USING, USING, CheckServer


@dataclass
class CheckResult:
    check: str
    source: str
    target: str
    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def _hosts(lab: Lab) -> list[str]:
    return [n.name for n in lab.resolved.nodes.values() if n.kind == "host"] or list(lab.resolved.nodes)


def mptcp_enabled(lab: Lab) -> list[CheckResult]:
    out = []
    for node in lab.resolved.nodes.values():
        want = "1" if node.mptcp["enabled"] else "0"
        got = sysctl.read(lab.netns(node.name), "net.mptcp.enabled")
        out.append(CheckResult("mptcp enabled", node.name, "", got == want,
                               f"net.mptcp.enabled={got}, wants {want}"))
    return out


def pings(lab: Lab, timeout: float = 1.0) -> list[CheckResult]:
    """Every host address to every other host's address of the same family, in parallel."""
    jobs = []
    hosts = _hosts(lab)
    for src in hosts:
        for iface in lab.resolved.nodes[src].interfaces:
            for cidr in iface.addresses:
                saddr = ipaddress.ip_interface(cidr).ip
                for dst in hosts:
                    if dst == src:
                        continue
                    for diface in lab.resolved.nodes[dst].interfaces:
                        for dcidr in diface.addresses:
                            daddr = ipaddress.ip_interface(dcidr).ip
                            if daddr.version != saddr.version:
                                continue
                            argv = ["ping", f"-{saddr.version}", "-c", "1", "-W", f"{timeout:g}", "-I", str(saddr), str(daddr)]
                            proc = subprocess.Popen(netns.argv(lab.netns(src), argv), stdout=subprocess.PIPE,
                                                    stderr=subprocess.STDOUT, text=True)
                            jobs.append((f"{src}:{iface.name} {saddr}", f"{dst}:{diface.name} {daddr}", proc))
    out = []
    for source, target, proc in jobs:
        text, _ = proc.communicate()
        rtt = next((w.split("=")[1] for line in text.splitlines() for w in line.split() if w.startswith("time=")), None)
        ok = proc.returncode == 0
        out.append(CheckResult("ping", source, target, ok, f"rtt {rtt} ms" if ok and rtt else "no reply"))
    return out


def mptcp_service(lab: Lab, client: str, server: str, port: int = 80) -> list[CheckResult]:
    """curl under mptcpize must hear "You are using MPTCP."; plain curl the opposite."""
    out = []
    target = lab.address(server, 4)
    url = f"http://{target}:{port}/"
    cases = [("mptcp used (curl under mptcpize)", True), ("tcp fallback seen (plain curl)", False)]
    if shutil.which("mptcpize") is None or shutil.which("curl") is None:
        return [CheckResult(name, client, url, False, "needs curl and mptcpize (package mptcpd)") for name, _ in cases]
    with CheckServer(lab.netns(server), port):
        for name, mptcp in cases:
            argv = ["curl", "-s", "--max-time", "5", url]
            if mptcp:
                argv = ["mptcpize", "run", *argv]
            proc = subprocess.run(netns.argv(lab.netns(client), argv), capture_output=True, text=True, timeout=15)
            expected = USING if mptcp else NOT_USING
            answer = proc.stdout.strip() or f"no answer (curl exit {proc.returncode})"
            out.append(CheckResult(name, client, url, proc.stdout == expected, answer))
    return out


def run_check(lab: Lab, client: str | None = None, server: str | None = None) -> list[CheckResult]:
    hosts = _hosts(lab)
    client = client or hosts[0]
    server = server or hosts[-1]
    lab.netns(client)
    lab.netns(server)
    return [*mptcp_enabled(lab), *pings(lab), *mptcp_service(lab, client, server)]
