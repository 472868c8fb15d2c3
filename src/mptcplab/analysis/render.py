"""The readable summary of an analysis (rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from mptcplab.analysis.model import AnalysisResult


def _fmt_t(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.2f} ms"


def render(result: AnalysisResult, console: Console) -> None:
    """Print inputs, one block per MPTCP connection, plain TCP, option counts, warnings."""
    d = result.to_dict()
    console.print(f"[bold]{d['packets']}[/] packets in {len(d['inputs'])} file(s), "
                  f"{d['tcp_packets']} TCP, {d['duplicates_removed']} duplicates removed")
    for c in d["mptcp_connections"]:
        fb = c["fallback"]
        state = f"[red]fallback to TCP: {fb['reason']}[/]" if fb else "[green]MPTCP[/]"
        console.print(f"\n[bold]MPTCP connection {c['id']}[/] {c['client']} -> {c['server']}  "
                      f"{state}  duration {c['duration']} s")
        if c["client_key"] or c["server_key"]:
            console.print(f"  keys c={c['client_key']} s={c['server_key']}  tokens "
                          f"c={c['client_token']} s={c['server_token']}  IDSN c={c['client_idsn']} "
                          f"s={c['server_idsn']}")
        t = Table(show_edge=False, header_style="bold")
        for col in ("sf", "stream", "kind", "path", "ids c/s", "backup c/s", "pkts c2s/s2c",
                    "bytes c2s/s2c", "retx", "handshake", "join at"):
            t.add_column(col)
        for s in c["subflows"]:
            join = s.get("join") or {}
            t.add_row(str(s["id"]), str(s["tcp_stream"]), s["kind"],
                      f"{s['src']}:{s['sport']} > {s['dst']}:{s['dport']}",
                      f"{s['client_addr_id']}/{s['server_addr_id']}",
                      f"{s['backup']['client']}/{s['backup']['server']}",
                      f"{s['c2s']['packets']}/{s['s2c']['packets']}",
                      f"{s['c2s']['payload_bytes']}/{s['s2c']['payload_bytes']}",
                      str(s["c2s"]["retransmitted_packets"] + s["s2c"]["retransmitted_packets"]),
                      _fmt_t(s["handshake"]["syn_to_ack"]),
                      _fmt_t(join.get("join_delay")) if join else "-")
        console.print(t)
        for name in ("c2s", "s2c"):
            dd = c["data"][name]
            if dd["mappings"] or dd["reinjected_packets"]:
                cov = dd["coverage"]
                console.print(f"  {name}: {dd['mappings']} mappings, {cov['covered_bytes']} bytes "
                              f"mapped, {cov['holes']} holes, {dd['reinjected_packets']} "
                              f"reinjected packets ({dd['reinjected_bytes']} bytes)")
        for e in c["events"]:
            if e["type"] == "DSS":
                continue
            extra = {k: v for k, v in e.items()
                     if k not in ("type", "time", "file", "packet", "tcp_stream")}
            console.print(f"  {e['time'] - c['start']:9.6f} s  pkt {e['packet']:>6}  "
                          f"[cyan]{e['type']}[/] {extra}")
    plain = d["tcp_connections"]
    if plain:
        t = Table(title="plain TCP connections", show_edge=False, header_style="bold")
        for col in ("stream", "path", "pkts", "bytes", "duration"):
            t.add_column(col)
        for s in plain:
            t.add_row(str(s["tcp_stream"]), f"{s['src']}:{s['sport']} > {s['dst']}:{s['dport']}",
                      f"{s['fwd']['packets']}/{s['rev']['packets']}",
                      f"{s['fwd']['payload_bytes']}/{s['rev']['payload_bytes']}",
                      f"{s['duration']} s")
        console.print(t)
    console.print("options: " + ", ".join(f"{k} {v}" for k, v in d["option_counts"].items()))
    for w in d["warnings"]:
        console.print(f"[yellow]warning[/] {w['path']} packet {w['packet']}: {w['message']}")
