"""`mptcplab doctor`: what this kernel offers a lab and how each impairment will be emulated."""

from __future__ import annotations

from typing import Any

import click

from mptcplab.cli.common import console, emit_json, json_option


def _report(measure: bool) -> dict[str, Any]:
    from mptcplab.kernel import probe as probe_mod
    from mptcplab.plan import shaping

    p = probe_mod.probe()
    features = p.feature_set()
    backend = shaping.choose_backend(features)
    emulation = {
        direction: {
            name: {"backend": backend, "how": how}
            for name, how in shaping.capabilities(backend, features, direction).items()
        }
        for direction in shaping.DIRECTIONS
    }
    doc: dict[str, Any] = {"probe": p.to_dict(), "backend": backend, "emulation": emulation}
    if measure:
        if backend == "fallback" and "nfqueue" in features:
            doc["delay_stage"] = probe_mod.measure_delay_stage(delay_s=0.01, seconds=2.5,
                                                               stage_args=("--rt", "10"))
        else:
            doc["delay_stage"] = None
    return doc


def _yes(value: bool) -> str:
    return "[green]yes[/]" if value else "[red]no[/]"


def _print(doc: dict[str, Any]) -> None:
    from rich.table import Table

    p = doc["probe"]
    console.print(f"[bold]kernel[/] {p['kernel']}   root: {_yes(p['root'])}   probe took {p['duration_s']} s")
    t = Table(title="kernel facilities (tried in a scratch namespace)")
    t.add_column("facility")
    t.add_column("works")
    t.add_column("why not")
    for name, ok in p["features"].items():
        t.add_row(name, _yes(ok), "" if ok else p["why_missing"].get(name, ""))
    console.print(t)

    m = Table(title="MPTCP (values a new namespace gets)")
    m.add_column("setting")
    m.add_column("value")
    for k, v in p["mptcp_sysctls"].items():
        m.add_row(f"net.mptcp.{k}", v)
    m.add_row("path managers", " ".join(p["path_managers"]))
    m.add_row("schedulers", " ".join(p["schedulers"]))
    m.add_row("endpoint flags (by kernel version)", " ".join(p["endpoint_flags"]))
    console.print(m)

    tools = Table(title="tools on PATH")
    tools.add_column("tool")
    tools.add_column("version")
    for k, v in p["tools"].items():
        tools.add_row(k, v or "[red]missing[/]")
    console.print(tools)

    e = Table(title=f"link emulation: backend [bold]{doc['backend']}[/]")
    e.add_column("impairment")
    e.add_column("egress")
    e.add_column("ingress")
    for name in doc["emulation"]["egress"]:
        eg = doc["emulation"]["egress"][name]["how"]
        ing = doc["emulation"]["ingress"][name]["how"]
        e.add_row(name, eg or "[red]not available[/]",
                  ing or ("(set on the sender)" if name == "mtu" else "[red]not available[/]"))
    console.print(e)

    if "delay_stage" in doc:
        s = doc["delay_stage"]
        if s is None:
            console.print("delay stage: not measured (not the active backend, or NFQUEUE missing)")
        else:
            console.print(
                f"[bold]delay stage[/] (10 ms, TCP for 2.5 s between scratch namespaces): "
                f"{s['goodput_gbps']} Gbit/s, median delay error idle {s['median_delay_error_idle_ms']} ms, "
                f"under load {s['median_delay_error_loaded_ms']} ms, release late p99 "
                f"{s['release_late_us']['p99']} us, CPU {s['stage_cpu_share'] * 100:.0f} % of a core")


@click.command("doctor")
@json_option
@click.option("--measure", is_flag=True, help="Also time a 2.5 s TCP transfer through the fallback delay stage.")
def doctor(as_json: bool, measure: bool) -> None:
    """What this kernel offers the lab, and how each impairment is emulated.

    Every facility is tried in a scratch network namespace that is removed afterwards;
    nothing outside it changes.
    """
    doc = _report(measure)
    if as_json:
        emit_json(doc)
    else:
        _print(doc)
