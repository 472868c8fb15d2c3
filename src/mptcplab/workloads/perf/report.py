"""Text output of a perf run, in iperf3's spirit: one line per stream and interval, then
one line per subflow under it; a summary with both ends' accounts, counters and events."""

from __future__ import annotations

from typing import Any

from mptcplab.workloads.perf.result import PerfResult


def human_bytes(n: float) -> str:
    for unit in ("Bytes", "KBytes", "MBytes", "GBytes", "TBytes"):
        if abs(n) < 1024 or unit == "TBytes":
            return f"{n:.0f} {unit}" if unit == "Bytes" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TBytes"


def human_bits(bps: float) -> str:
    for unit in ("bits/sec", "Kbits/sec", "Mbits/sec", "Gbits/sec"):
        if abs(bps) < 1000 or unit == "Gbits/sec":
            return f"{bps:.2f} {unit}" if unit != "bits/sec" else f"{bps:.0f} {unit}"
        bps /= 1000
    return f"{bps:.2f} Gbits/sec"


def _ep(ep: list[Any]) -> str:
    addr, port = ep
    return f"[{addr}]:{port}" if ":" in str(addr) else f"{addr}:{port}"


def interval_header() -> str:
    return "[stream]  Interval          Transfer       Bitrate            subflow: local > remote   cwnd   rtt   retr"


def interval_lines(entry: dict[str, Any]) -> list[str]:
    """Lines for one report interval: each stream, then each of its subflows."""
    lines = []
    span = f"{entry['start']:6.2f}-{entry['end']:<6.2f} sec"
    for st in entry["streams"]:
        lines.append(f"[{st['stream']:>6}]  {span}  {human_bytes(st['bytes']):>12}  {human_bits(st['bits_per_second']):>16}")
        for sf in st["subflows"]:
            lines.append(
                f"   sf{sf['id']:<3} {_ep(sf['local']):>22} > {_ep(sf['remote']):<22} "
                f"{human_bytes(sf['bytes']):>12}  {human_bits(sf['bits_per_second']):>16}  "
                f"cwnd {sf['snd_cwnd']:>5}  rtt {sf['rtt_us']:>6}us  retr {sf['retransmits']}"
            )
    if len(entry["streams"]) > 1:
        lines.append(f"[   SUM]  {span}  {human_bytes(entry['sum']['bytes']):>12}  "
                     f"{human_bits(entry['sum']['bits_per_second']):>16}")
    return lines


def summary_lines(result: PerfResult) -> list[str]:
    d = result.data
    lines = ["- - - - - - - - - - - - - - - - - - - - - - - - -"]
    for s in d["streams"]:
        snd, rcv = s["sender_end"], s["receiver_end"]
        kind = "MPTCP" if s["mptcp"] else ("TCP" if s["mptcp"] is False else "?")
        token = f" token {s['token']:#010x}" if s["token"] else ""
        lines.append(
            f"[{s['key']:>6}]  {s['sender']} sent {human_bytes(snd['bytes'])} in {snd['seconds']:.2f} s "
            f"({human_bits(snd['bytes'] * 8 / max(snd['seconds'], 1e-9))}), "
            f"{'server' if s['sender'] == 'client' else 'client'} received {human_bytes(rcv['bytes'])}  "
            f"[{kind}{token}] {'ok' if s['ok'] else 'FAILED'}"
        )
        for sf in s["subflows"]:
            when = ""
            if sf["created"] is not None or sf["closed"] is not None:
                c = "?" if sf["created"] is None else f"{sf['created']:.2f}s"
                x = "-" if sf["closed"] is None else f"{sf['closed']:.2f}s"
                when = f"  up {c} down {x}"
            lines.append(f"   sf{sf['id']:<3} {_ep(sf['local']):>22} > {_ep(sf['remote']):<22} "
                         f"sent {human_bytes(sf['bytes_sent'])}  acked {human_bytes(sf['bytes_acked'])}  "
                         f"retr {sf['total_retrans']}{when}")
    for direction, tot in sorted(d["totals"].items()):
        lines.append(f"[{direction:>6}]  total {human_bytes(tot['bytes_received'])} received in "
                     f"{tot['seconds']:.2f} s = {human_bits(tot['bits_per_second'])}")
    check = d["check"]
    if check["ok"]:
        lines.append("check: every byte arrived" + (", CRC-32 matches at both ends" if check["method"] == "crc32" else ""))
    else:
        lines += [f"check FAILED: {p}" for p in check["problems"]]
    for side in ("client", "server"):
        delta = d["counters"][side]
        if delta:
            lines.append(f"MPTcpExt {side}: " + " ".join(f"{k}={v}" for k, v in sorted(delta.items())))
    for err in d["counters"]["errors"] + d["events"]["errors"]:
        lines.append(f"note: {err}")
    for a in d["schedule"]:
        outcome = ", ".join(f"{r.get('stream', '')}: {'ok' if r['ok'] else r['error']}" for r in a["results"]) or "not run"
        lines.append(f"subflow-at {a['at']}s {a['action']} {a['local']}: {outcome}")
    return lines
