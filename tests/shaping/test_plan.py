"""Shaping plans are pure: check the exact commands each backend issues."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mptcplab.errors import ConfigError, KernelError
from mptcplab.plan.shaping import (
    Impairment,
    capabilities,
    check_supported,
    choose_backend,
    ifb_name,
    parse_loss,
    parse_rate,
    parse_time,
    plan,
    plan_change,
    plan_link,
    plan_link_change,
    stage_config,
    tbf_params,
    without,
)

FULL = Impairment(rate_bps=10_000_000, delay_s=0.02, jitter_s=0.002, loss=0.01, queue_delay_s=0.05)


def argvs(cmds):
    return [list(c.argv) for c in cmds]


def test_parse_units():
    imp = Impairment.parse(rate="10mbit", delay="20ms", jitter="500us", loss="0.5%", queue="100", mtu="1400")
    assert imp == Impairment(rate_bps=10_000_000, delay_s=0.02, jitter_s=0.0005, loss=0.005,
                             queue_packets=100, mtu=1400)
    assert parse_rate("1gbit") == 1_000_000_000
    assert parse_rate("1.5mbit") == 1_500_000
    assert parse_time("2s") == 2.0
    assert parse_loss("1%") == 0.01
    assert parse_loss("0.05") == 0.05
    assert Impairment.parse(rate="1mbit", queue="50ms").queue_delay_s == pytest.approx(0.05)


@pytest.mark.parametrize("kwargs, field", [
    ({"rate": "10furlongs"}, "rate"),
    ({"loss": "150%"}, "loss"),
    ({"delay": "-3ms"}, "delay"),
    ({"queue": "100"}, "queue"),  # a queue without a rate
    ({"mtu": "20"}, "mtu"),
])
def test_parse_errors(kwargs, field):
    with pytest.raises(ConfigError) as exc:
        Impairment.parse(**kwargs)
    assert exc.value.path == field


def test_netem_egress_exact_commands():
    p = plan("eth0", FULL, "netem")
    assert argvs(p.commands) == [
        ["tc", "qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "netem",
         "limit", "10000", "delay", "20ms", "2ms", "loss", "random", "1%"],
        ["tc", "qdisc", "replace", "dev", "eth0", "parent", "1:1", "handle", "10:", "tbf",
         "rate", "10000000bit", "burst", "6056", "limit", "62500"],
    ]
    assert argvs(p.undo) == [["tc", "qdisc", "del", "dev", "eth0", "root"]]
    assert p.stage_queues == []


def test_netem_delay_only_has_no_tbf():
    p = plan("eth1", Impairment(delay_s=0.0105), "netem")
    assert argvs(p.commands) == [["tc", "qdisc", "replace", "dev", "eth1", "root", "handle", "1:",
                                  "netem", "limit", "22000", "delay", "10.500ms"]]


def test_netem_ingress_uses_ifb():
    ifb = ifb_name("eth0")
    p = plan("eth0", Impairment(delay_s=0.01), "netem", "ingress")
    assert argvs(p.commands) == [
        ["ip", "link", "add", ifb, "type", "ifb"],
        ["ip", "link", "set", "dev", ifb, "up"],
        ["tc", "qdisc", "replace", "dev", "eth0", "handle", "ffff:", "ingress"],
        ["tc", "filter", "add", "dev", "eth0", "parent", "ffff:", "protocol", "all", "prio", "1",
         "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", ifb],
        ["tc", "qdisc", "replace", "dev", ifb, "root", "handle", "1:", "netem", "limit", "21000",
         "delay", "10ms"],
    ]
    assert argvs(p.undo) == [
        ["tc", "qdisc", "del", "dev", ifb, "root"],
        ["tc", "qdisc", "del", "dev", "eth0", "handle", "ffff:", "ingress"],
        ["ip", "link", "del", ifb],
    ]


def test_netem_change_in_place():
    new = Impairment(rate_bps=20_000_000, delay_s=0.08, loss=0.05)
    p = plan_change("eth0", FULL, new, "netem")
    assert argvs(p.commands) == [
        ["tc", "qdisc", "change", "dev", "eth0", "root", "handle", "1:", "netem",
         "limit", "10000", "delay", "80ms", "loss", "random", "5%"],
        ["tc", "qdisc", "change", "dev", "eth0", "parent", "1:1", "handle", "10:", "tbf",
         *tbf_params(new)],
    ]
    # dropping the rate removes only the child; clearing everything removes the root
    p = plan_change("eth0", FULL, without(FULL, "rate"), "netem")
    assert ["tc", "qdisc", "del", "dev", "eth0", "parent", "1:1", "handle", "10:"] in argvs(p.commands)
    assert argvs(plan_change("eth0", FULL, None, "netem").commands) == [["tc", "qdisc", "del", "dev", "eth0", "root"]]


def test_fallback_egress_exact_commands():
    p = plan("eth0", FULL, "fallback", queue_num=4)
    table = "mptcplab_loss_eg_eth0"
    assert argvs(p.commands) == [
        ["tc", "qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "tbf",
         "rate", "10000000bit", "burst", "6056", "limit", "62500"],
        ["nft", f"add table inet {table}; add chain inet {table} loss {{ type filter hook postrouting "
                f"priority -200; policy accept; }}; flush chain inet {table} loss; add rule inet {table} "
                f"loss oifname \"eth0\" numgen random mod 1000000 < 10000 counter drop"],
        ["iptables", "-w", "-t", "mangle", "-A", "POSTROUTING", "-o", "eth0", "-j", "NFQUEUE",
         "--queue-num", "4", "--queue-bypass"],
        ["ip6tables", "-w", "-t", "mangle", "-A", "POSTROUTING", "-o", "eth0", "-j", "NFQUEUE",
         "--queue-num", "4", "--queue-bypass"],
    ]
    assert argvs(p.undo) == [
        ["iptables", "-w", "-t", "mangle", "-D", "POSTROUTING", "-o", "eth0", "-j", "NFQUEUE",
         "--queue-num", "4", "--queue-bypass"],
        ["ip6tables", "-w", "-t", "mangle", "-D", "POSTROUTING", "-o", "eth0", "-j", "NFQUEUE",
         "--queue-num", "4", "--queue-bypass"],
        ["nft", f"delete table inet {table}"],
        ["tc", "qdisc", "del", "dev", "eth0", "root"],
    ]
    assert [q.to_dict() for q in p.stage_queues] == [
        {"num": 4, "name": "eth0/egress", "delay_s": 0.02, "jitter_s": 0.002, "limit": 0}]
    assert any("small queues" in n for n in p.notes)


def test_fallback_ingress_rate_via_ifb_loss_and_delay_in_prerouting():
    p = plan("veth3", FULL, "fallback", "ingress", queue_num=2)
    cmds = argvs(p.commands)
    ifb = ifb_name("veth3")
    assert ["tc", "qdisc", "replace", "dev", ifb, "root", "handle", "1:", "tbf",
            "rate", "10000000bit", "burst", "6056", "limit", "62500"] in cmds
    assert any(c[0] == "nft" and "hook prerouting" in c[1] and 'iifname "veth3"' in c[1] for c in cmds)
    assert ["iptables", "-w", "-t", "mangle", "-A", "PREROUTING", "-i", "veth3", "-j", "NFQUEUE",
            "--queue-num", "2", "--queue-bypass"] in cmds


def test_plan_link_fallback_puts_delay_at_receiver():
    p = plan_link("eth0", "eth2", FULL, "fallback", queue_num=5)
    sides = {(c.side, c.argv[0]) for c in p.commands}
    assert sides == {("local", "tc"), ("local", "nft"), ("peer", "iptables"), ("peer", "ip6tables")}
    peer = [list(c.argv) for c in p.commands if c.side == "peer"]
    assert peer[0][4:8] == ["-A", "PREROUTING", "-i", "eth2"]
    assert p.stage_queues[0].side == "peer" and p.stage_queues[0].name == "eth2/ingress"
    assert not p.notes or all("small queues" not in n for n in p.notes)
    # netem: everything on the sender
    assert {c.side for c in plan_link("eth0", "eth2", FULL, "netem").commands} == {"local"}


def test_fallback_change_touches_only_what_changed():
    old = Impairment(delay_s=0.01)
    new = Impairment(delay_s=0.08, loss=0.05)
    p = plan_link_change("eth0", "eth0", old, new, "fallback", queue_num=3)
    # delay: only the stage config changes; loss: one atomic nft transaction
    assert [c.argv[0] for c in p.commands] == ["nft"]
    assert "< 50000 counter drop" in p.commands[0].argv[1]
    assert p.stage_queues[0].delay_s == 0.08
    assert argvs(p.undo) == [["nft", "delete table inet mptcplab_loss_eg_eth0"]]
    # removing the delay removes the steering rules
    p = plan_link_change("eth0", "eth0", new, Impairment(loss=0.05), "fallback", queue_num=3)
    assert [c.argv[4] for c in p.commands] == ["-D", "-D"]
    assert p.stage_queues == []
    # a rate change is a tc change, not a replace
    p = plan_change("eth0", Impairment(rate_bps=10**7), Impairment(rate_bps=5 * 10**7), "fallback")
    assert argvs(p.commands)[0][:3] == ["tc", "qdisc", "change"]


def test_fallback_delay_needs_queue_number():
    with pytest.raises(ConfigError):
        plan("eth0", Impairment(delay_s=0.01), "fallback")


def test_mtu_and_queue_packets():
    imp = Impairment(rate_bps=1_000_000, queue_packets=20, mtu=1400)
    p = plan("eth0", imp, "fallback")
    assert argvs(p.commands)[0] == ["ip", "link", "set", "dev", "eth0", "mtu", "1400"]
    assert argvs(p.commands)[1][-2:] == ["limit", str(20 * 1414)]
    assert argvs(p.undo)[-1] == ["ip", "link", "set", "dev", "eth0", "mtu", "1500"]
    with pytest.raises(ConfigError):
        plan("eth0", Impairment(mtu=1400), "fallback", "ingress")


def test_capabilities_and_refusal():
    this_kernel = {"tbf", "htb", "ifb", "ingress", "u32", "mirred", "nftables", "numgen", "nfqueue", "iptables"}
    assert choose_backend(this_kernel) == "fallback"
    assert choose_backend(this_kernel | {"netem"}) == "netem"
    assert all(capabilities("fallback", this_kernel).values())
    caps = capabilities("netem", this_kernel)
    assert caps["delay"] is None and caps["mtu"] is not None
    with pytest.raises(KernelError, match="netem"):
        check_supported(Impairment(delay_s=0.01), "netem", "egress", this_kernel)
    with pytest.raises(KernelError, match="nfqueue"):
        check_supported(Impairment(jitter_s=0.01), "fallback", "egress", this_kernel - {"nfqueue"})
    with pytest.raises(KernelError, match="ifb"):
        check_supported(Impairment(rate_bps=10**6), "fallback", "ingress", this_kernel - {"ifb"})
    check_supported(Impairment(rate_bps=10**6), "fallback", "egress", this_kernel - {"ifb"})


def test_stage_config_rejects_duplicate_queues():
    q = plan("eth0", Impairment(delay_s=0.01), "fallback", queue_num=1).stage_queues
    assert stage_config(q, "/run/x.json")["queues"][0]["num"] == 1
    with pytest.raises(ConfigError):
        stage_config(q + q)


@given(
    rate=st.one_of(st.none(), st.integers(1_000, 10**10)),
    delay=st.one_of(st.none(), st.floats(0, 1)),
    jitter=st.one_of(st.none(), st.floats(0, 0.1)),
    loss=st.one_of(st.none(), st.floats(0, 1)),
    backend=st.sampled_from(["netem", "fallback"]),
    direction=st.sampled_from(["egress", "ingress"]),
)
def test_change_from_nothing_equals_setup_and_undo_inverts(rate, delay, jitter, loss, backend, direction):
    imp = Impairment(rate_bps=rate, delay_s=delay, jitter_s=jitter, loss=loss)
    p = plan("eth0", imp, backend, direction, queue_num=1)
    assert argvs(plan_change("eth0", None, imp, backend, direction, queue_num=1).commands) == argvs(p.commands)
    assert argvs(plan_change("eth0", imp, None, backend, direction, queue_num=1).commands) == argvs(p.undo)
    # every created thing has a removal in undo
    assert (p.commands == []) == (p.undo == [])
    assert argvs(plan_change("eth0", imp, imp, backend, direction, queue_num=1).commands) == []
