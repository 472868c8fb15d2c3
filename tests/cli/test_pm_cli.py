"""CLI of the path manager: `monitor`, `subflow add|del|list`, `announce`, `remove`, `prio`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from mptcplab.cli.main import cli
from mptcplab.cli.monitor import format_event, namespace_of
from mptcplab.cli.pm import TokenType
from mptcplab.errors import LabError
from mptcplab.kernel import mptcp_pm
from mptcplab.kernel.mptcp_pm import PMEvent

PORT = 5000


def run(*args: str):  # noqa: ANN201
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


# ---- no root ------------------------------------------------------------------


def test_format_event_like_ip_mptcp_monitor() -> None:
    ev = PMEvent(kind="sf_established", time=0.0, token=0xA35688C1, family=2, saddr="10.0.2.1",
                 daddr="10.0.2.2", sport=36771, dport=5000, loc_id=1, rem_id=1, backup=False,
                 error=None, ifindex=None, server_side=None)
    line = format_event(ev)
    assert "[  SF_ESTABLISHED] token=a35688c1 remid=1 locid=1 saddr=10.0.2.1 daddr=10.0.2.2" in line
    assert line.endswith("sport=36771 dport=5000 backup=0")


def test_token_parsing() -> None:
    t = TokenType()
    assert t.convert("a35688c1", None, None) == 0xA35688C1
    assert t.convert("0xA35688C1", None, None) == 0xA35688C1
    with pytest.raises(click.BadParameter):
        t.convert("xyz", None, None)
    with pytest.raises(click.BadParameter):
        t.convert("1ffffffff", None, None)


def test_node_or_netns() -> None:
    with pytest.raises(click.UsageError, match="not both"):
        namespace_of("a", None, "ns")
    with pytest.raises(click.UsageError, match="missing NODE"):
        namespace_of(None, None, None)
    with pytest.raises(LabError, match="does not exist"):
        namespace_of(None, None, "mptcplab-surely-absent-ns")


def test_prio_needs_a_direction() -> None:
    result = run("prio", "--netns", "x", "--local", "10.0.2.1")
    assert result.exit_code != 0 and "--backup or --no-backup" in result.output


# ---- root ---------------------------------------------------------------------


def ip(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True)


def two_hosts(netns_factory, *, userspace: bool) -> tuple[str, str]:
    a, b = netns_factory("a"), netns_factory("b")
    for i in (1, 2):
        ip(a, "link", "add", f"a{i}", "type", "veth", "peer", "name", f"b{i}", "netns", b)
        ip(a, "addr", "add", f"10.0.{i}.1/24", "dev", f"a{i}")
        ip(b, "addr", "add", f"10.0.{i}.2/24", "dev", f"b{i}")
        ip(a, "link", "set", f"a{i}", "up")
        ip(b, "link", "set", f"b{i}", "up")
    if userspace:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.mptcp.path_manager=userspace"],
                           check=True)
    return a, b


class Conns:
    """MPTCP connections from A to B; every socket is closed by close()."""

    def __init__(self, a: str, b: str) -> None:
        from mptcplab.kernel import netns
        self.a = a
        self.socks: list[socket.socket] = []
        with netns.enter(b):
            self.srv = self._keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_MPTCP))
            self.srv.bind(("0.0.0.0", PORT))
            self.srv.listen()
            self.srv.settimeout(5)

    def _keep(self, s: socket.socket) -> socket.socket:
        self.socks.append(s)
        return s

    def open(self) -> socket.socket:
        from mptcplab.kernel import netns
        with netns.enter(self.a):
            cli = self._keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_MPTCP))
        cli.settimeout(5)
        cli.connect(("10.0.1.2", PORT))
        conn = self._keep(self.srv.accept()[0])
        cli.sendall(b"hi")  # the client is fully established once its data is acked
        assert conn.recv(2) == b"hi"
        return cli

    def close(self) -> None:
        for s in self.socks:
            s.close()


def wait_kinds(listener: mptcp_pm.PMEventListener, kind: str, timeout: float = 5.0) -> mptcp_pm.PMEvent:
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ev in listener.read(deadline - time.monotonic()):
            if ev.kind == kind:
                return ev
    pytest.fail(f"no {kind} event")


@pytest.mark.root
def test_monitor_json_lines(netns_factory) -> None:
    a, b = two_hosts(netns_factory, userspace=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "mptcplab", "monitor", "--netns", a, "--json",
                             "--count", "2", "--timeout", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    conns = None
    try:
        assert proc.stderr.readline().startswith("monitoring")  # subscribed from here on
        conns = Conns(a, b)
        sport = conns.open().getsockname()[1]
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if conns:
            conns.close()
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["kind"] for e in events] == ["created", "established"]
    assert events[0]["saddr"] == "10.0.1.1" and events[0]["sport"] == sport
    assert isinstance(events[0]["time"], float) and events[0]["token"] == events[1]["token"]


@pytest.mark.root
def test_monitor_timeout_without_events(netns_factory) -> None:
    ns = netns_factory("quiet")
    result = run("monitor", "--netns", ns, "--count", "1", "--timeout", "0.2")
    assert result.exit_code == 1 and "0 of 1 events" in result.output


@pytest.mark.root
def test_pm_commands_drive_a_connection(netns_factory) -> None:
    a, b = two_hosts(netns_factory, userspace=True)
    conns = Conns(a, b)
    try:
        result = run("announce", "--netns", b, "10.0.2.2", "--id", "5")
        assert result.exception and "no established MPTCP connection" in str(result.exception)

        with mptcp_pm.PMEventListener(a) as la:
            cli_sock = conns.open()
            token = wait_kinds(la, "established").token
            result = run("announce", "--netns", b, "10.0.2.2", "--id", "5")
            assert result.exit_code == 0, result.output
            assert wait_kinds(la, "announced").rem_id == 5

            result = run("subflow", "add", "--netns", a, "--local", "10.0.2.1", "--remote", "10.0.2.2",
                         "--token", f"{token:x}")
            assert result.exit_code == 0, result.output
            sf = wait_kinds(la, "sf_established")
            assert (sf.saddr, sf.daddr, sf.dport) == ("10.0.2.1", "10.0.2.2", PORT)
            assert cli_sock.getsockopt(284, 1, 96)[0] == 1  # mptcp_info.subflows

            result = run("subflow", "list", "--netns", a, "--json")
            listed = json.loads(result.output)
            assert {(s["saddr"], s["sport"]) for s in listed} == {
                ("10.0.1.1", cli_sock.getsockname()[1]), ("10.0.2.1", sf.sport)}

            result = run("prio", "--netns", a, "--local", "10.0.2.1", "--backup")
            assert result.exit_code == 0, result.output
            [mine] = [s for s in mptcp_pm.subflows(a, token) if s.saddr == "10.0.2.1"]
            assert mine.backup

            result = run("subflow", "del", "--netns", a, "--remote", "10.0.1.2")  # only the first
            assert result.exit_code == 0, result.output
            assert wait_kinds(la, "sf_closed").saddr == "10.0.1.1"
            result = run("subflow", "del", "--netns", a, "--local", "10.9.9.9")
            assert "no subflow of token" in str(result.exception)

            result = run("remove", "--netns", b, "--id", "5")
            assert result.exit_code == 0, result.output
            assert wait_kinds(la, "removed").rem_id == 5

            conns.open()  # a second connection: now the token must be given
            result = run("remove", "--netns", b, "--id", "5")
            assert "2 MPTCP connections; choose one with --token" in str(result.exception)
            result = run("remove", "--netns", b, "--id", "5", "--token", "1")
            assert "no MPTCP connection with token 00000001" in str(result.exception)
    finally:
        conns.close()


@pytest.mark.root
def test_pm_commands_refuse_kernel_pm(netns_factory) -> None:
    a, _b = two_hosts(netns_factory, userspace=False)
    result = run("subflow", "add", "--netns", a, "--local", "10.0.2.1", "--remote", "10.0.2.2")
    assert isinstance(result.exception, LabError)
    assert "uses the kernel path manager" in str(result.exception)
