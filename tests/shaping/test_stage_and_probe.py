"""The NFQUEUE wire format, the stage's process contract, the probe and `doctor`."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys

import pytest
from click.testing import CliRunner
from shaping_helpers import Stage, sh

from mptcplab.errors import MptcplabError
from mptcplab.kernel import netns, nfqueue
from mptcplab.lab.delaystage import load_config


def _packet_msg(queue: int, pid: int, length: int) -> bytes:
    attrs = nfqueue._attr(nfqueue.NFQA_PACKET_HDR, struct.pack(">IHB", pid, 0x0800, 3))
    attrs += nfqueue._attr(nfqueue.NFQA_CAP_LEN, struct.pack(">I", length))
    body = struct.pack(">BBH", 2, 0, queue) + attrs
    return struct.pack("=IHHII", 16 + len(body), nfqueue.MSG_TYPE_PACKET, 0, 0, 0) + body


def test_parse_packets_and_batch_verdict_layout():
    data = _packet_msg(7, 41, 65226) + _packet_msg(7, 42, 66)
    out: list[tuple[int, int, int]] = []
    nfqueue.parse_packets(data, len(data), out)
    assert out == [(7, 41, 65226), (7, 42, 66)]
    msg = nfqueue.verdict_batch_message(7, 42)
    length, mtype, flags = struct.unpack_from("=IHH", msg)
    assert (length, mtype, flags) == (len(msg), (3 << 8) | 3, 1)
    assert struct.unpack_from(">BBH", msg, 16) == (0, 0, 7)
    assert struct.unpack_from("=HH", msg, 20) == (12, nfqueue.NFQA_VERDICT_HDR)
    assert struct.unpack_from(">II", msg, 24) == (nfqueue.NF_ACCEPT, 42)


def test_stage_config_errors(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"queues": [{"num": 1}, {"num": 1}]}))
    with pytest.raises(MptcplabError, match="duplicate"):
        load_config(str(bad))
    bad.write_text("{")
    with pytest.raises(MptcplabError):
        load_config(str(bad))


@pytest.mark.root
def test_stage_refuses_the_initial_namespace(require_root, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"queues": []}))
    res = subprocess.run([sys.executable, "-m", "mptcplab.lab.delaystage", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=10)
    assert res.returncode == 2 and "outside a named lab namespace" in res.stderr


@pytest.mark.root
def test_stage_binds_reloads_and_exits_cleanly(netns_factory, tmp_path):
    ns = netns_factory("s")
    stage = Stage(ns, tmp_path, [{"num": 3, "delay_s": 0.01}])
    try:
        # the kernel sees our queue bound to the stage's netlink port
        with netns.enter(ns):
            assert 3 in nfqueue.proc_stats()
        stage.reconfigure([{"num": 4, "delay_s": 0.02}])
        doc = stage.stats()
        assert [q["num"] for q in doc["queues"]] == [4]
        with netns.enter(ns):
            assert set(nfqueue.proc_stats()) == {4}
    finally:
        assert stage.stop() == 0
    with netns.enter(ns):
        assert nfqueue.proc_stats() == {}
    assert stage.proc.returncode == 0 and stage.proc.returncode != -signal.SIGTERM


@pytest.mark.root
def test_probe_measures_in_a_removed_scratch_namespace(require_root):
    from mptcplab.kernel.probe import probe

    p = probe()
    assert not [n for n in netns.list_names() if n.startswith(f"mptcplab-probe-{os.getpid()}-")]
    assert p.features["tbf"] and p.features["veth"]
    for name, ok in p.features.items():
        assert ok or p.why_missing.get(name), name
    assert p.mptcp_sysctls.get("enabled") in {"0", "1"}
    assert "kernel" in p.path_managers
    assert json.loads(json.dumps(p.to_dict()))["kernel"] == p.kernel


@pytest.mark.root
def test_probe_agrees_with_a_direct_try(netns_factory):
    from mptcplab.kernel.probe import probe

    ns = netns_factory("p")
    direct = subprocess.run(netns.argv(ns, ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]),
                            capture_output=True).returncode == 0
    assert probe().features["netem"] == direct
    sh(ns, ["ip", "link", "set", "lo", "up"])


@pytest.mark.root
def test_doctor_json(require_root):
    from mptcplab.cli.doctor import doctor
    from mptcplab.plan.shaping import choose_backend

    res = CliRunner().invoke(doctor, ["--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    features = {k for k, v in doc["probe"]["features"].items() if v}
    assert doc["backend"] == choose_backend(features)
    egress = doc["emulation"]["egress"]
    assert set(egress) == {"rate", "delay", "jitter", "loss", "queue", "mtu"}
    assert all(v["how"] for v in egress.values())  # this lab machine can emulate everything
