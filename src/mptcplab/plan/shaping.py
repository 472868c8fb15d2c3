"""Link emulation plans: rate, delay, jitter, loss, queue and MTU as commands. Pure: no I/O.

Two backends produce the same link behaviour from different kernel parts:

* ``netem``: one root ``netem`` qdisc (handle 1:) for delay, jitter and loss, with a
  ``tbf`` child (handle 10:, parent 1:1) for rate and queue. Packets are delayed, then
  paced, like a wire behind a delay line.
* ``fallback`` (kernels without sch_netem): ``tbf`` root for rate and queue, an nftables
  ``numgen random`` rule for loss (resolution 1e-6), and delay/jitter in the user-space
  delay stage (mptcplab.lab.delaystage) fed by the xtables NFQUEUE target
  (``iptables -t mangle ... -j NFQUEUE --queue-num N --queue-bypass``; nft's own
  ``queue`` statement is often not built). ``--queue-bypass`` means: if no stage is
  bound, packets pass undelayed instead of being dropped.

Directions: ``egress`` shapes what the interface transmits; ``ingress`` shapes what it
receives. Ingress rate (and every netem ingress impairment) goes through an ifb device
(``ifb<crc32 of ifname>``) fed by a u32 match-all mirred redirect on the ingress qdisc;
ingress loss is an nft prerouting rule; ingress delay an NFQUEUE rule in PREROUTING -i.

Where the fallback puts delay matters: a locally sent TCP packet held in the sender's
own POSTROUTING still counts against TCP small queues (TSQ), which caps a delayed local
TCP flow at a few Mbit/s (netem avoids this by orphaning the skb; user space cannot).
Packets that crossed a veth into another namespace are already orphaned. So for a link
between two namespaces use `plan_link` / `plan_link_change`: with the fallback backend it
delays direction src->dst at the receiver (``PREROUTING -i dst_if`` in the peer
namespace) and keeps rate, queue and loss on the sender. Commands carry ``side``
("local" = the namespace of the interface planned, "peer" = the other end).

API for the lab engine (all pure)::

    imp = Impairment.parse(rate="10mbit", delay="20ms", jitter="2ms", loss="1%", queue="50ms")
    check_supported(imp, backend, "egress", features)   # KernelError if the kernel can't
    p = plan_link("eth0", "eth0", imp, backend, queue_num=1)       # setup a->b
    p.commands / p.undo      # [Command(side, argv)], run in order in side's namespace
    p.stage_queues           # StageQueue entries the PEER's delay stage must serve
    c = plan_link_change("eth0", "eth0", old, new, backend, queue_num=1)  # in place
    stage_config(queues, stats_path) -> dict  # JSON for the stage; write, then SIGHUP

`plan(ifname, imp, backend, direction, queue_num)` and `plan_change(...)` do the same
for one interface direction with everything on that interface.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from mptcplab.errors import ConfigError, KernelError

BACKENDS = ("netem", "fallback")
DIRECTIONS = ("egress", "ingress")
IMPAIRMENTS = ("rate", "delay", "jitter", "loss", "queue", "mtu")
ETH_HLEN = 14
LOSS_SCALE = 1_000_000  # nft numgen modulus: loss resolution of 1 ppm
NFT_PRIORITY = -200  # before iptables mangle (-150), so lost packets never reach the stage
DEFAULT_QUEUE_S = 0.05
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,15}$")


# --------------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class Impairment:
    """What one direction of one interface should look like. None = not impaired."""

    rate_bps: int | None = None
    delay_s: float | None = None
    jitter_s: float | None = None
    loss: float | None = None  # fraction 0..1
    queue_packets: int | None = None
    queue_delay_s: float | None = None  # queue limit as a delay budget at the rate
    mtu: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, source: str = "impairment") -> None:
        def bad(path: str, msg: str) -> ConfigError:
            return ConfigError(source, path, msg)

        if self.rate_bps is not None and self.rate_bps <= 0:
            raise bad("rate", f"must be positive, got {self.rate_bps} bit/s")
        for name in ("delay_s", "jitter_s"):
            v = getattr(self, name)
            if v is not None and (v < 0 or not math.isfinite(v) or v > 60):
                raise bad(name[:-2], f"must be between 0 and 60 s, got {v}")
        if self.loss is not None and not 0.0 <= self.loss <= 1.0:
            raise bad("loss", f"must be a fraction between 0 and 1 (or 0%..100%), got {self.loss}")
        if self.queue_packets is not None and self.queue_packets <= 0:
            raise bad("queue", f"must be a positive packet count, got {self.queue_packets}")
        if self.queue_delay_s is not None and self.queue_delay_s <= 0:
            raise bad("queue", f"must be a positive delay, got {self.queue_delay_s}")
        if self.queue_packets is not None and self.queue_delay_s is not None:
            raise bad("queue", "give the queue either in packets or as a delay, not both")
        if (self.queue_packets or self.queue_delay_s) and not self.rate_bps:
            raise bad("queue", "a queue limit needs a rate (the queue builds up behind the rate)")
        if self.mtu is not None and not 68 <= self.mtu <= 65535:
            raise bad("mtu", f"must be between 68 and 65535, got {self.mtu}")

    def active(self) -> set[str]:
        """Names (from IMPAIRMENTS) this spec asks for; zero delay/jitter/loss is 'not asked'."""
        out = set()
        if self.rate_bps:
            out.add("rate")
        if self.delay_s:
            out.add("delay")
        if self.jitter_s:
            out.add("jitter")
        if self.loss:
            out.add("loss")
        if self.queue_packets or self.queue_delay_s:
            out.add("queue")
        if self.mtu:
            out.add("mtu")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def parse(cls, rate: str | None = None, delay: str | None = None, jitter: str | None = None,
              loss: str | None = None, queue: str | None = None, mtu: str | int | None = None,
              source: str = "impairment") -> Impairment:
        """Build from user strings: rate "10mbit", delay "20ms"/"500us", loss "1%"/"0.01",
        queue "100" (packets) or "50ms" (delay budget), mtu "1400"."""
        qp = qd = None
        if queue is not None:
            q = str(queue).strip().lower()
            if q.endswith("p") or q.isdigit():
                qp = _parse_int(q.rstrip("p"), source, "queue")
            else:
                qd = parse_time(q, source, "queue")
        return cls(
            rate_bps=parse_rate(rate, source, "rate") if rate is not None else None,
            delay_s=parse_time(delay, source, "delay") if delay is not None else None,
            jitter_s=parse_time(jitter, source, "jitter") if jitter is not None else None,
            loss=parse_loss(loss, source, "loss") if loss is not None else None,
            queue_packets=qp, queue_delay_s=qd,
            mtu=_parse_int(str(mtu), source, "mtu") if mtu is not None else None,
        )


_RATE_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "tbit": 10**12,
               "bps": 8, "kbps": 8 * 10**3, "mbps": 8 * 10**6, "gbps": 8 * 10**9}
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_NUM_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*([a-z%]*)\s*$")


def _split(text: str, source: str, path: str) -> tuple[float, str]:
    m = _NUM_UNIT.match(str(text).lower())
    if not m:
        raise ConfigError(source, path, f"cannot read {text!r}")
    return float(m.group(1)), m.group(2)


def _parse_int(text: str, source: str, path: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(source, path, f"expected a whole number, got {text!r}") from None


def parse_rate(text: str | int, source: str = "impairment", path: str = "rate") -> int:
    """"10mbit" -> 10_000_000 bit/s (SI units, like tc; 'bps' means bytes/s as in tc)."""
    value, unit = _split(str(text), source, path)
    if unit not in _RATE_UNITS and unit != "":
        raise ConfigError(source, path, f"unknown rate unit {unit!r} in {text!r} (use bit, kbit, mbit, gbit)")
    return round(value * _RATE_UNITS.get(unit, 1))


def parse_time(text: str | float, source: str = "impairment", path: str = "delay") -> float:
    """"20ms" -> 0.02 s; a bare number is seconds."""
    value, unit = _split(str(text), source, path)
    if unit not in _TIME_UNITS and unit != "":
        raise ConfigError(source, path, f"unknown time unit {unit!r} in {text!r} (use s, ms, us)")
    return value * _TIME_UNITS.get(unit, 1.0)


def parse_loss(text: str | float, source: str = "impairment", path: str = "loss") -> float:
    """"1%" -> 0.01; a bare number is a fraction."""
    value, unit = _split(str(text), source, path)
    if unit == "%":
        return value / 100.0
    if unit:
        raise ConfigError(source, path, f"loss must be a percentage or a fraction, got {text!r}")
    return value


# ----------------------------------------------------------------- what can be done
# impairment -> (how, kernel features needed), per backend; ingress adds _INGRESS_NEEDS.
MECHANISMS: dict[str, dict[str, tuple[str, frozenset[str]]]] = {
    "netem": {
        "rate": ("tc tbf (child of netem)", frozenset({"netem", "tbf"})),
        "delay": ("tc netem delay", frozenset({"netem"})),
        "jitter": ("tc netem delay JITTER (uniform; netem may reorder)", frozenset({"netem"})),
        "loss": ("tc netem loss random", frozenset({"netem"})),
        "queue": ("tbf limit (bytes)", frozenset({"netem", "tbf"})),
        "mtu": ("ip link set mtu", frozenset()),
    },
    "fallback": {
        "rate": ("tc tbf", frozenset({"tbf"})),
        "delay": ("NFQUEUE + user-space delay stage", frozenset({"nfqueue", "iptables"})),
        "jitter": ("delay stage (uniform, keeps FIFO order)", frozenset({"nfqueue", "iptables"})),
        "loss": ("nftables numgen random", frozenset({"nftables", "numgen"})),
        "queue": ("tbf limit (bytes)", frozenset({"tbf"})),
        "mtu": ("ip link set mtu", frozenset()),
    },
}
_INGRESS_NEEDS = frozenset({"ifb", "ingress", "u32", "mirred"})
_INGRESS_VIA_IFB = {"netem": {"rate", "delay", "jitter", "loss", "queue"}, "fallback": {"rate", "queue"}}


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError("link emulation", "backend", f"unknown backend {backend!r} (use {', '.join(BACKENDS)})")


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ConfigError("link emulation", "direction", f"must be egress or ingress, got {direction!r}")


def requirements(backend: str, impairment: str, direction: str = "egress") -> frozenset[str]:
    """Kernel features (probe names) one impairment needs with BACKEND in DIRECTION."""
    _check_backend(backend)
    _check_direction(direction)
    how, needs = MECHANISMS[backend][impairment]
    if direction == "ingress" and impairment in _INGRESS_VIA_IFB[backend]:
        needs = needs | _INGRESS_NEEDS
    return needs


def capabilities(backend: str, features: Iterable[str] | None = None,
                 direction: str = "egress") -> dict[str, str | None]:
    """Impairment -> how BACKEND does it, or None when FEATURES (from the probe) lack a need.

    FEATURES None means "assume the kernel has everything" (for docs and dry runs).
    ``mtu`` on ingress is None: an MTU belongs to the transmitting side.
    """
    have = None if features is None else set(features)
    out: dict[str, str | None] = {}
    for name in IMPAIRMENTS:
        how = MECHANISMS[backend][name][0]
        if direction == "ingress" and name == "mtu":
            out[name] = None
            continue
        needs = requirements(backend, name, direction)
        if direction == "ingress" and name in _INGRESS_VIA_IFB[backend]:
            how += " on an ifb"
        out[name] = how if have is None or needs <= have else None
    return out


def choose_backend(features: Iterable[str]) -> str:
    """netem when the kernel has it, else the fallback."""
    return "netem" if "netem" in set(features) else "fallback"


def check_supported(imp: Impairment, backend: str, direction: str = "egress",
                    features: Iterable[str] | None = None) -> None:
    """Raise KernelError naming what is missing when BACKEND cannot do all of IMP here."""
    _check_backend(backend)
    _check_direction(direction)
    have = None if features is None else set(features)
    for name in sorted(imp.active()):
        if direction == "ingress" and name == "mtu":
            raise ConfigError("link emulation", "mtu", "an MTU is set on the transmitting side (egress), not on ingress")
        if have is None:
            continue
        missing = requirements(backend, name, direction) - have
        if missing:
            raise KernelError(
                f"{name} on {direction} with backend {backend} needs {', '.join(sorted(missing))}, "
                f"which this kernel lacks (see `mptcplab doctor`)")


# ------------------------------------------------------------------------ the plans
@dataclass(frozen=True)
class Command:
    """One command: ARGV run inside the namespace named by SIDE ("local" or "peer")."""

    argv: tuple[str, ...]
    side: str = "local"

    def shell(self) -> str:
        """For --dry-run / explain: the argv quoted for a POSIX shell."""
        import shlex

        return " ".join(shlex.quote(a) for a in self.argv)


@dataclass(frozen=True)
class StageQueue:
    """One NFQUEUE queue the delay stage of SIDE's namespace serves."""

    num: int
    name: str
    delay_s: float
    jitter_s: float
    side: str = "local"
    limit: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"num": self.num, "name": self.name, "delay_s": self.delay_s,
                "jitter_s": self.jitter_s, "limit": self.limit}


@dataclass
class ShapingPlan:
    """Commands to run in order, their undo (also in order), and the stage queues wanted."""

    backend: str
    ifname: str
    direction: str
    commands: list[Command] = field(default_factory=list)
    undo: list[Command] = field(default_factory=list)
    stage_queues: list[StageQueue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def argvs(self, side: str | None = None) -> list[list[str]]:
        return [list(c.argv) for c in self.commands if side is None or c.side == side]


def ifb_name(ifname: str) -> str:
    """The ifb device that carries IFNAME's ingress: deterministic, 11 characters."""
    return f"ifb{zlib.crc32(ifname.encode()):08x}"


def nft_table(ifname: str, direction: str) -> str:
    """The nftables table (family inet) holding the loss rule of one interface direction."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", ifname)
    if safe != ifname:
        safe += f"_{zlib.crc32(ifname.encode()):08x}"
    return f"mptcplab_loss_{'eg' if direction == 'egress' else 'in'}_{safe}"


def _check_ifname(ifname: str) -> None:
    if not _IFNAME_RE.match(ifname):
        raise ConfigError("link emulation", "interface", f"invalid interface name {ifname!r}")


def _bits(rate: int) -> str:
    return f"{rate}bit"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}ms".replace(".000ms", "ms")


def _mtu_l2(imp: Impairment, base_mtu: int) -> int:
    return (imp.mtu or base_mtu) + ETH_HLEN


def tbf_params(imp: Impairment, base_mtu: int = 1500) -> list[str]:
    """rate, burst, limit for tbf: burst = max(4 frames, 1 ms at the rate); the limit is
    the queue (packets x frame size, or delay budget x rate), by default 50 ms at the rate."""
    assert imp.rate_bps
    frame = _mtu_l2(imp, base_mtu)
    per_s = imp.rate_bps / 8
    burst = max(4 * frame, math.ceil(per_s * 0.001))
    if imp.queue_packets:
        limit = imp.queue_packets * frame
    else:
        limit = math.ceil(per_s * (imp.queue_delay_s or DEFAULT_QUEUE_S))
    limit = max(limit, 2 * frame)
    return ["rate", _bits(imp.rate_bps), "burst", str(burst), "limit", str(limit)]


def netem_params(imp: Impairment, base_mtu: int = 1500) -> list[str]:
    """netem arguments: a limit large enough for the delay line, delay [jitter], loss."""
    line = (imp.delay_s or 0.0) + (imp.jitter_s or 0.0)
    pps = (imp.rate_bps / 8 / _mtu_l2(imp, base_mtu)) if imp.rate_bps else 1_000_000
    limit = max(10_000, math.ceil(pps * line * 2) + 1000)
    args = ["limit", str(limit)]
    if imp.delay_s or imp.jitter_s:
        args += ["delay", _ms(imp.delay_s or 0.0)]
        if imp.jitter_s:
            args.append(_ms(imp.jitter_s))
    if imp.loss:
        args += ["loss", "random", f"{imp.loss * 100:.6g}%"]
    return args


def _nft_loss(ifname: str, direction: str, loss: float) -> str:
    table = nft_table(ifname, direction)
    hook, match = ("postrouting", "oifname") if direction == "egress" else ("prerouting", "iifname")
    threshold = round(loss * LOSS_SCALE)
    return (f"add table inet {table}; "
            f"add chain inet {table} loss {{ type filter hook {hook} priority {NFT_PRIORITY}; policy accept; }}; "
            f"flush chain inet {table} loss; "
            f"add rule inet {table} loss {match} \"{ifname}\" numgen random mod {LOSS_SCALE} < {threshold} counter drop")


def _nfqueue_rules(op: str, ifname: str, direction: str, queue_num: int, side: str) -> list[Command]:
    chain, flag = ("POSTROUTING", "-o") if direction == "egress" else ("PREROUTING", "-i")
    return [Command((tool, "-w", "-t", "mangle", op, chain, flag, ifname, "-j", "NFQUEUE",
                     "--queue-num", str(queue_num), "--queue-bypass"), side)
            for tool in ("iptables", "ip6tables")]


@dataclass(frozen=True)
class _Target:
    """Where one direction's pieces go."""

    ifname: str
    direction: str
    backend: str
    queue_num: int | None
    base_mtu: int
    delay_ifname: str  # interface the NFQUEUE rule matches
    delay_direction: str
    delay_side: str


def _components(t: _Target, imp: Impairment | None) -> dict[str, Any]:
    """The pieces IMP needs (name -> parameters); equal parameters = nothing to change."""
    if imp is None:
        return {}
    act = imp.active()
    comps: dict[str, Any] = {}
    if "mtu" in act:
        comps["mtu"] = imp.mtu
    if t.backend == "netem":
        if act & {"rate", "delay", "jitter", "loss", "queue"}:
            if t.direction == "ingress":
                comps["ifb"] = True
            comps["netem"] = tuple(netem_params(imp, t.base_mtu))
            if imp.rate_bps:
                comps["tbf_child"] = tuple(tbf_params(imp, t.base_mtu))
    else:
        if imp.rate_bps:
            if t.direction == "ingress":
                comps["ifb"] = True
            comps["tbf_root"] = tuple(tbf_params(imp, t.base_mtu))
        if imp.loss:
            comps["nft_loss"] = imp.loss
        if imp.delay_s or imp.jitter_s:
            if t.queue_num is None:
                raise ConfigError("link emulation", "queue_num",
                                  "the fallback backend needs an NFQUEUE number for delay/jitter")
            comps["nfqueue"] = (imp.delay_s or 0.0, imp.jitter_s or 0.0)
    return comps


def _qdisc_dev(t: _Target) -> str:
    return ifb_name(t.ifname) if t.direction == "ingress" else t.ifname


def _up(t: _Target, name: str, value: Any, existed: bool) -> list[Command]:
    """Commands that create (existed False) or change in place (True) one component."""
    dev = _qdisc_dev(t)
    if name == "mtu":
        return [Command(("ip", "link", "set", "dev", t.ifname, "mtu", str(value)))]
    if name == "ifb":
        ifb = ifb_name(t.ifname)
        return [
            Command(("ip", "link", "add", ifb, "type", "ifb")),
            Command(("ip", "link", "set", "dev", ifb, "up")),
            Command(("tc", "qdisc", "replace", "dev", t.ifname, "handle", "ffff:", "ingress")),
            Command(("tc", "filter", "add", "dev", t.ifname, "parent", "ffff:", "protocol", "all",
                     "prio", "1", "u32", "match", "u32", "0", "0",
                     "action", "mirred", "egress", "redirect", "dev", ifb)),
        ]
    verb = "change" if existed else "replace"
    if name == "netem":
        return [Command(("tc", "qdisc", verb, "dev", dev, "root", "handle", "1:", "netem", *value))]
    if name == "tbf_child":
        return [Command(("tc", "qdisc", verb, "dev", dev, "parent", "1:1", "handle", "10:", "tbf", *value))]
    if name == "tbf_root":
        return [Command(("tc", "qdisc", verb, "dev", dev, "root", "handle", "1:", "tbf", *value))]
    if name == "nft_loss":
        return [Command(("nft", _nft_loss(t.ifname, t.direction, value)))]
    if name == "nfqueue":
        if existed:
            return []  # only the stage's settings change
        return _nfqueue_rules("-A", t.delay_ifname, t.delay_direction, t.queue_num or 0, t.delay_side)
    raise AssertionError(name)


def _down(t: _Target, name: str, base_mtu: int) -> list[Command]:
    dev = _qdisc_dev(t)
    if name == "mtu":
        return [Command(("ip", "link", "set", "dev", t.ifname, "mtu", str(base_mtu)))]
    if name == "ifb":
        return [Command(("tc", "qdisc", "del", "dev", t.ifname, "handle", "ffff:", "ingress")),
                Command(("ip", "link", "del", ifb_name(t.ifname)))]
    if name in ("netem", "tbf_root"):
        return [Command(("tc", "qdisc", "del", "dev", dev, "root"))]
    if name == "tbf_child":
        return [Command(("tc", "qdisc", "del", "dev", dev, "parent", "1:1", "handle", "10:"))]
    if name == "nft_loss":
        return [Command(("nft", f"delete table inet {nft_table(t.ifname, t.direction)}"))]
    if name == "nfqueue":
        return _nfqueue_rules("-D", t.delay_ifname, t.delay_direction, t.queue_num or 0, t.delay_side)
    raise AssertionError(name)


_ORDER = ("mtu", "ifb", "netem", "tbf_child", "tbf_root", "nft_loss", "nfqueue")


def _diff(t: _Target, old: Impairment | None, new: Impairment | None) -> list[Command]:
    """Commands that take the link from OLD to NEW in place (None = unimpaired)."""
    before, after = _components(t, old), _components(t, new)
    cmds: list[Command] = []
    # teardown in reverse order, except a child that a removed root takes with it
    for name in reversed(_ORDER):
        if name in before and name not in after:
            if name == "tbf_child" and "netem" not in after:
                continue
            cmds += _down(t, name, t.base_mtu)
    for name in _ORDER:
        if name in after and before.get(name) != after[name]:
            cmds += _up(t, name, after[name], existed=name in before)
    return cmds


def _stage_queues(t: _Target, imp: Impairment | None) -> list[StageQueue]:
    comps = _components(t, imp)
    if "nfqueue" not in comps:
        return []
    delay, jitter = comps["nfqueue"]
    return [StageQueue(t.queue_num or 0, f"{t.delay_ifname}/{t.delay_direction}", delay, jitter, t.delay_side)]


def _target(ifname: str, backend: str, direction: str, queue_num: int | None, base_mtu: int,
            peer_ifname: str | None = None) -> _Target:
    _check_backend(backend)
    _check_direction(direction)
    _check_ifname(ifname)
    if peer_ifname is not None:
        _check_ifname(peer_ifname)
        return _Target(ifname, direction, backend, queue_num, base_mtu, peer_ifname, "ingress", "peer")
    return _Target(ifname, direction, backend, queue_num, base_mtu, ifname, direction, "local")


def _notes(t: _Target, imp: Impairment | None) -> list[str]:
    notes = []
    if imp and t.backend == "fallback" and t.delay_side == "local" and t.direction == "egress" \
            and (imp.delay_s or imp.jitter_s):
        notes.append("delay on egress holds locally sent TCP packets against TCP small queues: "
                     "local TCP through this interface is slowed; prefer plan_link (delay at the receiver)")
    if imp and imp.loss:
        notes.append("loss drops whole GSO/TSO super-packets, like netem")
    return notes


def plan(ifname: str, imp: Impairment, backend: str, direction: str = "egress",
         queue_num: int | None = None, base_mtu: int = 1500) -> ShapingPlan:
    """Set up IMP on one interface direction (everything on that interface)."""
    t = _target(ifname, backend, direction, queue_num, base_mtu)
    check_supported(imp, backend, direction)
    return ShapingPlan(backend, ifname, direction, _diff(t, None, imp), _diff(t, imp, None),
                       _stage_queues(t, imp), _notes(t, imp))


def plan_change(ifname: str, old: Impairment | None, new: Impairment | None, backend: str,
                direction: str = "egress", queue_num: int | None = None,
                base_mtu: int = 1500) -> ShapingPlan:
    """Change a running setup from OLD to NEW in place (tc change, nft flush+add, stage
    reconfig); `undo` goes back to OLD. stage_queues is what the stage must serve for NEW."""
    t = _target(ifname, backend, direction, queue_num, base_mtu)
    for imp in (old, new):
        if imp is not None:
            check_supported(imp, backend, direction)
    return ShapingPlan(backend, ifname, direction, _diff(t, old, new), _diff(t, new, old),
                       _stage_queues(t, new), _notes(t, new))


def plan_link(src_ifname: str, dst_ifname: str, imp: Impairment, backend: str,
              queue_num: int | None = None, base_mtu: int = 1500) -> ShapingPlan:
    """Impair direction src->dst of a point-to-point link (veth pair).

    netem: everything on src egress. fallback: rate, queue, loss, mtu on src egress
    ("local"); delay/jitter by the stage of the receiving namespace ("peer", rule
    PREROUTING -i dst_ifname), where the packet no longer counts against the sender's TSQ.
    """
    return plan_link_change(src_ifname, dst_ifname, None, imp, backend, queue_num, base_mtu)


def plan_link_change(src_ifname: str, dst_ifname: str, old: Impairment | None,
                     new: Impairment | None, backend: str, queue_num: int | None = None,
                     base_mtu: int = 1500) -> ShapingPlan:
    """`plan_link` from OLD to NEW, in place; undo returns to OLD."""
    peer = dst_ifname if backend == "fallback" else None
    t = _target(src_ifname, backend, "egress", queue_num, base_mtu, peer)
    for imp in (old, new):
        if imp is not None:
            check_supported(imp, backend, "egress")
    return ShapingPlan(backend, src_ifname, "egress", _diff(t, old, new), _diff(t, new, old),
                       _stage_queues(t, new), _notes(t, new))


def stage_config(queues: Iterable[StageQueue], stats_path: str | None = None,
                 stats_interval_s: float = 0.5, seed: int | None = None) -> dict[str, Any]:
    """The delay stage's config document for one namespace (write as JSON, then SIGHUP)."""
    qs = sorted(queues, key=lambda q: q.num)
    nums = [q.num for q in qs]
    if len(nums) != len(set(nums)):
        raise ConfigError("link emulation", "queue_num", f"queue numbers used twice: {nums}")
    return {"queues": [q.to_dict() for q in qs], "stats_path": stats_path,
            "stats_interval_s": stats_interval_s, "seed": seed}


def without(imp: Impairment, *names: str) -> Impairment:
    """IMP with the named impairments cleared (for `link set ... --clear delay`)."""
    mapping = {"rate": ("rate_bps",), "delay": ("delay_s",), "jitter": ("jitter_s",), "loss": ("loss",),
               "queue": ("queue_packets", "queue_delay_s"), "mtu": ("mtu",)}
    changes: dict[str, Any] = {}
    for n in names:
        for f in mapping[n]:
            changes[f] = None
    if "rate" in names:
        changes.update(queue_packets=None, queue_delay_s=None)
    return replace(imp, **changes)
