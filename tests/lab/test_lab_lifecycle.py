"""Labs built in the kernel: up and down, MPTCP over the preset paths, switch VLAN moves,
IPv6, the dry-run script's equivalence, failures and SIGKILL leaving nothing behind."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import unique
from lab.labkit import (
    LabFactory,
    ip_json,
    lab_factory,
    lab_namespaces,
    mptcp_connection,
    ping,
    purge,
    wait_for,
)
from mptcplab.errors import KernelError, LabError
from mptcplab.kernel import mptcp_pm, netns
from mptcplab.lab import state as state_mod
from mptcplab.model.generate import chain
from mptcplab.model.load import load_topology, parse_topology

pytestmark = pytest.mark.root

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def labs(require_root: None) -> Iterator[LabFactory]:
    with lab_factory() as factory:
        yield factory


@pytest.fixture(scope="module")
def vde() -> Iterator:
    """One openwrt-vde lab shared by the tests that only use (and restore) it."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with lab_factory() as factory:
        yield factory("openwrt-vde", prefix="v")


def mounted(prefix: str) -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        return [line for line in fh if f"/run/netns/{prefix}" in line]


def assert_gone(name: str, state_root: Path | None = None) -> None:
    assert lab_namespaces(name) == []
    assert mounted(f"{name}-") == []
    assert not ((state_root or state_mod.STATE_ROOT) / name).exists()


# ---- up and down ---------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["openwrt-vde", "two-paths"])
def test_preset_up_and_down(labs: LabFactory, preset: str) -> None:
    from mptcplab import Lab

    lab = labs(preset)
    res = load_topology(preset).resolved
    expected = sorted(f"{lab.name}-{n}" for n in [*res.nodes, *res.switches])
    assert sorted(lab_namespaces(lab.name)) == expected
    st = state_mod.load(lab.name)
    assert st.complete and sorted(st.namespaces) == expected
    # attach sees the same lab; status and endpoints come from the kernel
    other = Lab.attach(lab.name)
    status = other.status()
    assert status["complete"] and set(status["nodes"]) == {*res.nodes, *res.switches}
    for node in res.nodes.values():
        want = sorted((addr, eid, iface.name, tuple(iface.flags))
                      for iface in node.interfaces for addr, eid in iface.endpoint_ids.items())
        got = sorted((e["addr"], e["id"], e["dev"], tuple(sorted(e["flags"]))) for e in other.endpoints(node.name))
        assert got == want
        addrs = {a for i in status["nodes"][node.name]["interfaces"] for a in i["addresses"]}
        assert {a for i in node.interfaces for a in i.addresses} <= addrs
        assert all(i["state"] == "UP" for i in status["nodes"][node.name]["interfaces"])
    assert lab.down() == list(reversed(st.namespaces))
    assert_gone(lab.name)
    assert lab.down() == []  # twice is harmless
    with pytest.raises(LabError, match="no lab named"):
        Lab.attach(lab.name)


def test_context_manager_tears_down_on_error(labs: LabFactory) -> None:
    from mptcplab import Lab

    name = labs.name("cm")
    with pytest.raises(RuntimeError, match="boom"), Lab("two-paths", name=name) as lab:
        assert ping(lab.netns("client"), lab.address("server"))
        raise RuntimeError("boom")
    assert_gone(name)


# ---- MPTCP on the seed testbed ---------------------------------------------------------

def subnet24(addr: str) -> str:
    return str(ipaddress.ip_network(f"{addr}/24", strict=False))


def test_mptcp_uses_both_paths_and_never_management(vde) -> None:  # noqa: ANN001
    a, b = vde.netns("a"), vde.netns("b")
    with mptcp_connection(a, b, "10.168.1.2"):
        conns = mptcp_pm.connections(a)
        assert len(conns) == 1 and not conns[0].fallback
        token = conns[0].token

        def both_paths() -> list | None:
            sfs = mptcp_pm.subflows(a, token)
            nets = {subnet24(s.saddr) for s in sfs} | {subnet24(s.daddr) for s in sfs}
            return sfs if {"10.168.1.0/24", "10.168.2.0/24"} <= nets else None

        sfs = wait_for(both_paths, 5)
        assert sfs, f"subflows: {mptcp_pm.subflows(a, token)}"
        # a path is used when a subflow runs inside it, both ends on the same subnet
        inside = {subnet24(s.saddr) for s in sfs if subnet24(s.saddr) == subnet24(s.daddr)}
        assert inside == {"10.168.1.0/24", "10.168.2.0/24"}
        server = mptcp_pm.subflows(b)
        assert {(s.daddr, s.dport) for s in server} >= {(s.saddr, s.sport) for s in sfs}
        for s in [*sfs, *server]:
            assert not s.saddr.startswith("10.168.255.") and not s.daddr.startswith("10.168.255.")


def test_switch_port_vlan_cuts_and_restores_path_one(vde) -> None:  # noqa: ANN001
    a, sw = vde.netns("a"), vde.netns("sw")

    def master(port: str) -> str:
        return ip_json(sw, "link", "show", port)[0].get("master")

    assert ping(a, "10.168.1.2", "10.168.1.1") and ping(a, "10.168.2.2", "10.168.2.1")
    try:
        assert vde.set_port_vlan("sw", 10, 4) == 1
        assert master("p10") == "vlan4" and vde.port_vlan("sw", 10) == 4
        assert not ping(a, "10.168.1.2", "10.168.1.1", timeout=0.5)
        assert ping(a, "10.168.2.2", "10.168.2.1")  # the other path is untouched
    finally:
        assert vde.set_port_vlan("sw", 10, 1) == 4
    assert master("p10") == "vlan1"
    assert wait_for(lambda: ping(a, "10.168.1.2", "10.168.1.1", timeout=0.5), 5)
    events = state_mod.load(vde.name).extra["events"]
    assert [(e["port"], e["vlan"]) for e in events if e["event"] == "port_vlan"][-2:] == [(10, 4), (10, 1)]
    with pytest.raises(LabError, match="no VLAN 9"):
        vde.set_port_vlan("sw", 10, 9)
    with pytest.raises(LabError, match="no port 99"):
        vde.set_port_vlan("sw", 99, 1)


# ---- two-paths: IPv6, links ---------------------------------------------------------

def test_two_paths_ipv6(labs: LabFactory) -> None:
    lab = labs("two-paths")
    client, server = lab.netns("client"), lab.netns("server")
    for k in (1, 2):
        assert ping(client, f"fd00:6d70:0:{k}::2", f"fd00:6d70:0:{k}::1"), f"IPv6 path {k}"
        assert ping(client, f"10.0.{k}.2", f"10.0.{k}.1"), f"IPv4 path {k}"
    assert lab.address("server", 6) == "fd00:6d70:0:1::2"
    # MPTCP over IPv6 uses both v6 paths
    with mptcp_connection(client, server, "fd00:6d70:0:1::2", socket.AF_INET6):
        def v6_paths() -> set | None:
            nets = {str(ipaddress.ip_network(f"{s.saddr}/64", strict=False))
                    for s in mptcp_pm.subflows(client) if s.family == socket.AF_INET6}
            return nets if nets >= {"fd00:6d70:0:1::/64", "fd00:6d70:0:2::/64"} else None

        assert wait_for(v6_paths, 5), mptcp_pm.subflows(client)


def test_link_down_cuts_the_path(labs: LabFactory) -> None:
    lab = labs("two-paths")
    client = lab.netns("client")
    lab.set_link_state("path1", False)
    assert ip_json(client, "link", "show", "eth0")[0]["operstate"] == "DOWN"
    assert not ping(client, "10.0.1.2", "10.0.1.1", timeout=0.3)
    assert ping(client, "10.0.2.2", "10.0.2.1") and ping(client, "fd00:6d70:0:2::2", "fd00:6d70:0:2::1")
    assert state_mod.load(lab.name).extra["events"][-1]["event"] == "link_down"
    with pytest.raises(LabError, match="no link 'path9'"):
        lab.set_link_state("path9", False)


def test_link_down_then_up_restores_the_path(labs: LabFactory) -> None:
    lab = labs("two-paths")
    client = lab.netns("client")
    before = {k: ip_json(client, *k.split()) for k in ("-4 route show table all", "-6 route show table all")}
    lab.set_link_state("path1", False)
    lab.set_link_state("path1", True)
    assert wait_for(lambda: ping(client, "10.0.1.2", "10.0.1.1", timeout=0.5), 5)
    assert wait_for(lambda: ping(client, "fd00:6d70:0:1::2", "fd00:6d70:0:1::1", timeout=0.5), 3)
    after = {k: ip_json(client, *k.split()) for k in before}
    assert normalise(after) == normalise(before)


# ---- the dry-run script builds the same lab ---------------------------------------------

def normalise(value: object) -> object:
    """Drop what differs between two identical labs: MACs, link-local addresses, ifindex,
    and a bridge's operstate (UNKNOWN or UP, depending on when its first port forwarded)."""
    if isinstance(value, list):
        items = [normalise(v) for v in value]
        items = [v for v in items if v is not None]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, dict):
        for key in ("local", "dst", "prefsrc"):
            if str(value.get(key, "")).startswith("fe80:"):
                return None
        drop = {"address", "ifindex", "link_index", "link_netnsid", "index", "permaddr", "operstate"}
        return {k: normalise(v) for k, v in value.items() if k not in drop}
    return value


def kernel_view(ns: str) -> dict[str, object]:
    views = {}
    for args in (("addr",), ("link",), ("-4", "route", "show", "table", "all"), ("-6", "route", "show", "table", "all"),
                 ("-4", "rule"), ("-6", "rule"), ("mptcp", "endpoint")):
        views[" ".join(args)] = normalise(ip_json(ns, *args))
    limits = subprocess.run(["ip", "-n", ns, "mptcp", "limits"], capture_output=True, text=True, check=True).stdout
    views["limits"] = limits.split()
    sysctls = subprocess.run(netns.argv(ns, ["sysctl", "net.mptcp", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding",
                                             "net.ipv6.conf.all.accept_dad", "net.ipv6.conf.all.disable_ipv6"]),
                             capture_output=True, text=True, check=True).stdout
    views["sysctl"] = sorted(sysctls.splitlines())
    return views


@pytest.mark.parametrize("preset", ["openwrt-vde", "two-paths"])
def test_dry_run_script_builds_the_same_lab(labs: LabFactory, preset: str) -> None:
    lab = labs(preset, prefix="api")
    other = labs.name("sh")
    script = subprocess.run([sys.executable, "-m", "mptcplab", "up", preset, "--dry-run", "--name", other],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    assert not lab_namespaces(other)
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = lab.resolved
    for node in [*res.nodes, *res.switches]:
        ns_script = f"{other}-{node}"
        # the script does not wait for carriers, as `up` does
        wait_for(lambda ns=ns_script: all(lk.get("operstate") == "UP" for lk in ip_json(ns, "link", "show", "type", "veth")), 5)
        api_view, script_view = kernel_view(lab.netns(node)), kernel_view(ns_script)
        for key in api_view:
            assert api_view[key] == script_view[key], f"{node}: `ip {key}` differs"
    assert sorted(lab_namespaces(other)) == sorted(f"{other}-{n}" for n in [*res.nodes, *res.switches])
    lab.down()
    purge(other)
    assert_gone(lab.name)
    assert_gone(other)


# ---- failures leave nothing ------------------------------------------------------------------

def test_missing_scheduler_fails_before_building(labs: LabFactory) -> None:
    text = "[mptcp]\nscheduler = 'nosuchsched'\n[nodes.a]\n[nodes.b]\n[[links]]\nendpoints = ['a:e0', 'b:e0']\n"
    name = labs.name("f")
    from mptcplab import Lab

    with pytest.raises(LabError, match="'nosuchsched' is not available"):
        Lab(parse_topology(text, "s.toml"), name=name).up()
    assert_gone(name)


def test_kernel_refusal_mid_plan_rolls_back(labs: LabFactory) -> None:
    text = "[nodes.a]\nsysctls = { 'net.ipv4.no_such_knob' = 1 }\n[nodes.b]\n[[links]]\nendpoints = ['a:e0', 'b:e0']\n"
    name = labs.name("f")
    from mptcplab import Lab

    with pytest.raises(LabError, match="everything created was removed"):
        Lab(parse_topology(text, "s.toml"), name=name).up()
    assert_gone(name)


@pytest.mark.parametrize("exc", [KernelError("injected refusal"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_failure_at_the_last_op_rolls_back(labs: LabFactory, monkeypatch: pytest.MonkeyPatch,
                                           exc: BaseException) -> None:
    from mptcplab.lab.apply import Applier
    from mptcplab.plan import ops as o

    seen: list[str] = []
    real = Applier.apply

    def apply(self: Applier, op: o.Op) -> None:
        if isinstance(op, o.AddEndpoint) and op.ns.endswith("-b") and op.id == 2:
            seen.extend(lab_namespaces(self.state.name))
            raise exc
        real(self, op)

    monkeypatch.setattr(Applier, "apply", apply)
    lab = labs("openwrt-vde", up=False)
    with pytest.raises(LabError if isinstance(exc, KernelError) else KeyboardInterrupt):
        lab.up()
    assert len(seen) == 3  # everything existed when the last operation failed
    assert_gone(lab.name)
    assert lab.state is None


# ---- SIGKILL at any moment, then `clean` -------------------------------------------------------

def state_of(root: Path, name: str) -> dict | None:
    try:
        return json.loads((root / name / "state.json").read_text())
    except (FileNotFoundError, ValueError):
        return None


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["starting", "namespaces", "apply", "late-apply", "complete"])
def test_sigkill_during_up_then_clean(require_root: None, tmp_path: Path, phase: str) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    name = unique("k")
    state_root = tmp_path / "state"  # a private state dir: `clean` must not touch other people's labs
    env = {**os.environ, "MPTCPLAB_STATE_DIR": str(state_root), "PYTHONPATH": SRC}
    topo = tmp_path / "chain30.toml"
    topo.write_text(chain(30))
    proc = subprocess.Popen([sys.executable, "-m", "mptcplab", "up", str(topo), "--name", name],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if phase == "starting":
            time.sleep(rng.uniform(0, 0.3))
        elif phase == "namespaces":
            wait_for(lambda: len(lab_namespaces(name)) >= rng.randint(1, 29), 30, 0.002)
        elif phase in ("apply", "late-apply"):
            wait_for(lambda: len(lab_namespaces(name)) >= 30, 30, 0.005)
            time.sleep(rng.uniform(0, 0.25) if phase == "apply" else rng.uniform(0.25, 0.6))
        else:
            wait_for(lambda: (state_of(state_root, name) or {}).get("complete"), 30, 0.01)
        proc.kill()
        proc.wait(10)
        where = f"phase {phase}, seed {seed}, {len(lab_namespaces(name))} namespaces at kill"
        clean = subprocess.run([sys.executable, "-m", "mptcplab", "clean"], env=env, capture_output=True,
                               text=True, timeout=60)
        assert clean.returncode == 0, f"{where}: {clean.stderr}"
        assert "Traceback" not in clean.stderr
        assert lab_namespaces(name) == [], where
        assert mounted(f"{name}-") == [], where
        assert not state_root.exists() or list(state_root.iterdir()) == [], where
        leftovers = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue
                if name.encode() in cmdline:
                    leftovers.append((entry, cmdline))
        assert leftovers == [], where
        if phase == "complete":
            assert name in clean.stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        purge(name, state_root)


# ---- several labs ---------------------------------------------------------------------------

def test_two_labs_of_one_topology_at_once(labs: LabFactory) -> None:
    from mptcplab import Lab

    first, second = labs("two-paths", prefix="p"), labs("two-paths", prefix="q")
    for lab in (first, second):
        assert ping(lab.netns("client"), "10.0.1.2") and ping(lab.netns("client"), "fd00:6d70:0:2::2")
        assert len(lab.endpoints("client")) == 4
    # the same name twice is refused and leaves the running lab alone
    with pytest.raises(LabError, match="already exists"):
        Lab("two-paths", name=first.name).up()
    assert ping(first.netns("client"), "10.0.2.2")
    with mptcp_connection(first.netns("client"), first.netns("server"), "10.0.1.2"), \
            mptcp_connection(second.netns("client"), second.netns("server"), "10.0.1.2"):
        assert len(mptcp_pm.connections(first.netns("client"))) == 1
        assert len(mptcp_pm.connections(second.netns("client"))) == 1
    first.down()
    assert_gone(first.name)
    assert ping(second.netns("client"), "10.0.2.2")
    assert sorted(lab_namespaces(second.name)) == [f"{second.name}-client", f"{second.name}-server"]
