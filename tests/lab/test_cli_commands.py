"""The lab commands as a user types them (subprocesses): up/list/status/endpoints/exec/
switch/link/check/down, and their one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import unique
from lab.labkit import ip_json, lab_namespaces, ping, purge, wait_for
from mptcplab.lab import state as state_mod

pytestmark = pytest.mark.root

SRC = str(Path(__file__).resolve().parents[2] / "src")


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "mptcplab", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def ok(*args: str) -> str:
    proc = cli(*args)
    assert proc.returncode == 0, f"mptcplab {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def one_line_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mptcplab: error: ") and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def lab() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    name = unique("c")
    try:
        out = json.loads(ok("up", "openwrt-vde", "--name", name, "--json"))
        assert out == {"lab": name, "namespaces": [f"{name}-a", f"{name}-b", f"{name}-sw"]}
        yield name
    finally:
        purge(name)


def test_list_and_status(lab: str) -> None:
    mine = [e for e in json.loads(ok("list", "--json")) if e["lab"] == lab]
    assert mine == [{"lab": lab, "source": "preset openwrt-vde", "complete": True, "nodes": ["a", "b"],
                     "switches": ["sw"]}]
    status = json.loads(ok("status", "--lab", lab, "--json"))
    eth0 = next(i for i in status["nodes"]["a"]["interfaces"] if i["name"] == "eth0")
    assert eth0["addresses"] == ["10.168.1.1/24"] and eth0["state"] == "UP"
    ports = {i["name"]: i["master"] for i in status["nodes"]["sw"]["interfaces"] if i["name"].startswith("p")}
    assert ports == {"p10": "vlan1", "p11": "vlan2", "p2": "vlan3", "p20": "vlan1", "p21": "vlan2", "p3": "vlan3"}
    assert "10.168.255.1/24" in ok("status", "--lab", lab)


def test_endpoints(lab: str) -> None:
    data = json.loads(ok("endpoints", "b", "--lab", lab, "--json"))
    assert [(e["id"], e["addr"], e["flags"], e["dev"]) for e in data["endpoints"]] == [
        (1, "10.168.1.2", ["signal"], "eth0"), (2, "10.168.2.2", ["signal"], "eth1")]
    assert data["limits"] == {"subflows": 8, "add_addr_accepted": 8}
    kernel = ip_json(f"{lab}-b", "mptcp", "endpoint")
    assert sorted(e["address"] for e in kernel) == ["10.168.1.2", "10.168.2.2"]


def test_exec_runs_inside_the_node(lab: str) -> None:
    out = ok("exec", "--lab", lab, "a", "--", "ip", "-j", "addr", "show", "eth1")
    assert json.loads(out)[0]["addr_info"][0]["local"] == "10.168.2.1"
    assert cli("exec", "--lab", lab, "a", "--", "sh", "-c", "exit 7").returncode == 7
    one_line_error(cli("exec", "--lab", lab, "nosuch", "--", "true"), "has no node 'nosuch'")


def test_switch_moves_a_port(lab: str) -> None:
    a = f"{lab}-a"
    try:
        ok("switch", "sw", "port", "20", "vlan", "4", "--lab", lab)
        assert ip_json(f"{lab}-sw", "link", "show", "p20")[0]["master"] == "vlan4"
        assert not ping(a, "10.168.1.2", "10.168.1.1", timeout=0.3)
    finally:
        ok("switch", "sw", "port", "20", "vlan", "1", "--lab", lab)
    assert ip_json(f"{lab}-sw", "link", "show", "p20")[0]["master"] == "vlan1"
    assert wait_for(lambda: ping(a, "10.168.1.2", "10.168.1.1", timeout=0.5), 5)
    one_line_error(cli("switch", "sw", "port", "20", "vlan", "7", "--lab", lab), "no VLAN 7")


def test_link_down_and_up_on_a_switch_port(lab: str) -> None:
    ok("link", "--lab", lab, "down", "b:eth2")
    assert ip_json(f"{lab}-b", "link", "show", "eth2")[0]["operstate"] == "DOWN"
    assert "UP" not in ip_json(f"{lab}-sw", "link", "show", "p3")[0]["flags"]
    ok("link", "--lab", lab, "up", "b:eth2")
    assert wait_for(lambda: ip_json(f"{lab}-b", "link", "show", "eth2")[0]["operstate"] == "UP", 5)
    one_line_error(cli("link", "--lab", lab, "down", "nolink"), "no link 'nolink'")


def test_check_passes(lab: str) -> None:
    data = json.loads(ok("check", "--lab", lab, "--json"))
    assert data["passed"] is True
    kinds = {r["check"] for r in data["results"]}
    assert "mptcp enabled" in kinds and "ping" in kinds and len(kinds) >= 3
    assert all(r["ok"] for r in data["results"])


def test_up_twice_is_refused_and_harmless(lab: str) -> None:
    one_line_error(cli("up", "openwrt-vde", "--name", lab), "already exists")
    assert sorted(lab_namespaces(lab)) == [f"{lab}-a", f"{lab}-b", f"{lab}-sw"]
    assert ping(f"{lab}-a", "10.168.2.2", "10.168.2.1")


def test_down_removes_everything(lab: str) -> None:
    # runs last in this module (file order): the lab fixture's purge is then a no-op
    ok("down", "--lab", lab)
    assert lab_namespaces(lab) == [] and not (state_mod.STATE_ROOT / lab).exists()
    one_line_error(cli("down", "--lab", lab), f"no lab named '{lab}'")
    one_line_error(cli("status", "--lab", lab), f"no lab named '{lab}'")


@pytest.mark.slow
def test_demo_tells_the_story_and_cleans_up(require_root: None) -> None:
    name = unique("d")
    try:
        proc = cli("demo", "--name", name)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
        assert "demo passed" in proc.stdout
        assert lab_namespaces(name) == [] and not (state_mod.STATE_ROOT / name).exists()
    finally:
        purge(name)
