"""Nothing outside the lab changes: a full up / traffic / switch / link / down cycle of both
presets leaves the root namespace's addresses, routes, rules, nft ruleset, MPTCP endpoints
and net.* sysctls exactly as they were."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import rootguard
from conftest import unique
from lab.labkit import ip_json, lab_factory, mptcp_connection, ping, purge, wait_for

SRC = str(Path(__file__).resolve().parents[1] / "src")


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "mptcplab", *args], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.root
@pytest.mark.slow
def test_full_cycle_of_both_presets_leaves_root_namespace_unchanged(require_root: None) -> None:
    before = rootguard.snapshot()
    assert before["addr"] and before["sysctl"], "snapshot read nothing"
    name = unique("rg")
    try:
        # openwrt-vde through the CLI, the way a user drives it
        for args in (("up", "openwrt-vde", "--name", name), ("check", "--lab", name),
                     ("switch", "sw", "port", "10", "vlan", "4", "--lab", name),
                     ("switch", "sw", "port", "10", "vlan", "1", "--lab", name),
                     ("endpoints", "a", "--lab", name), ("down", "--lab", name)):
            proc = cli(*args)
            assert proc.returncode == 0, f"mptcplab {' '.join(args)}: {proc.stderr}"
    finally:
        purge(name)
    # two-paths through the API, with MPTCP traffic and a link cut
    with lab_factory() as labs:
        lab = labs("two-paths", prefix="rg")
        client, server = lab.netns("client"), lab.netns("server")
        with mptcp_connection(client, server, "10.0.1.2"):
            pass
        lab.set_link_state("path2", False)
        assert ip_json(client, "link", "show", "eth1")[0]["operstate"] == "DOWN"
        lab.set_link_state("path2", True)
        assert wait_for(lambda: ping(client, "10.0.2.2", "10.0.2.1", timeout=0.5), 5)
        lab.down()
    changes = rootguard.diff(before, rootguard.snapshot())
    assert changes == [], "\n".join(changes)


def test_diff_names_what_changed() -> None:
    before = {"addr": [{"ifname": "eth0", "mtu": 1500}], "sysctl": {"net.ipv4.ip_forward": "0"},
              "mptcp_limits": ["subflows", "2"]}
    after = copy.deepcopy(before)
    assert rootguard.diff(before, after) == []
    after["addr"][0]["mtu"] = 9000
    after["sysctl"]["net.ipv4.ip_forward"] = "1"
    after["sysctl"]["net.netfilter.nf_conntrack_max"] = "65536"  # a module loaded: not a change
    after["mptcp_limits"] = ["subflows", "8"]
    lines = rootguard.diff(before, after)
    assert "sysctl net.ipv4.ip_forward: '0' -> '1'" in lines
    assert any(ln.startswith("addr: removed") and "1500" in ln for ln in lines)
    assert any(ln.startswith("addr: added") and "9000" in ln for ln in lines)
    assert any(ln.startswith("mptcp_limits:") for ln in lines)
    assert not any("nf_conntrack_max" in ln for ln in lines)


def test_volatile_fields_are_ignored() -> None:
    raw = {"ifname": "eth0", "addr_info": [{"local": "fd00::2", "valid_life_time": 100, "preferred_life_time": 50}]}
    assert rootguard._strip(raw) == {"ifname": "eth0", "addr_info": [{"local": "fd00::2"}]}
    assert rootguard.VOLATILE_SYSCTLS.match("net.netfilter.nf_conntrack_count")
    assert not rootguard.VOLATILE_SYSCTLS.match("net.ipv4.ip_forward")


def test_session_hooks_fail_the_session_on_change(monkeypatch: pytest.MonkeyPatch) -> None:
    snaps = iter([{"sysctl": {"net.ipv4.ip_forward": "0"}}, {"sysctl": {"net.ipv4.ip_forward": "1"}}])
    monkeypatch.setattr(rootguard, "snapshot", lambda: next(snaps))
    monkeypatch.setattr(rootguard, "_enabled", lambda config: True)
    lines: list[str] = []
    reporter = types.SimpleNamespace(write_line=lambda text, **kw: lines.append(text))
    config = types.SimpleNamespace(stash=pytest.Stash(),
                                   pluginmanager=types.SimpleNamespace(get_plugin=lambda name: reporter))
    session = types.SimpleNamespace(config=config, exitstatus=pytest.ExitCode.OK)
    rootguard.pytest_sessionstart(session)
    rootguard.pytest_sessionfinish(session, 0)
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert "net.ipv4.ip_forward: '0' -> '1'" in lines[0]
    # unchanged: the session keeps its status
    snaps = iter([{"a": 1}, {"a": 1}])
    session.exitstatus = pytest.ExitCode.OK
    rootguard.pytest_sessionstart(session)
    rootguard.pytest_sessionfinish(session, 0)
    assert session.exitstatus == pytest.ExitCode.OK
