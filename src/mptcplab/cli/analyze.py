"""`mptcplab analyze PCAP...`: MPTCP connections, subflows, events and reinjections."""

from __future__ import annotations

import os

import click

from mptcplab.cli.common import console, emit_json, json_option
from mptcplab.errors import MptcplabError


@click.command("analyze")
@click.argument("pcaps", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option
@click.option("--plots", "plot_dir", type=click.Path(file_okay=False), default=None,
              help="Write sequence and throughput plots of each MPTCP connection here.")
@click.option("--format", "fmt", type=click.Choice(["png", "svg"]), default="png",
              show_default=True, help="Plot file format.")
def analyze(pcaps: tuple[str, ...], as_json: bool, plot_dir: str | None, fmt: str) -> None:
    """Turn pcaps into MPTCP connections, subflows and mappings.

    Several captures of one test (one per interface) are merged by time and packets
    seen twice are counted once. Damaged input gives warnings, never a traceback.
    """
    from mptcplab.analysis import analyze as run
    from mptcplab.analysis.render import render

    for p in pcaps:
        if not os.path.isfile(p):
            raise MptcplabError(f"{p}: no such file")
    result = run(pcaps, series=plot_dir is not None)
    if plot_dir is not None:
        from mptcplab.analysis import plots

        os.makedirs(plot_dir, exist_ok=True)
        for conn in result.connections:
            for d, name in ((0, "c2s"), (1, "s2c")):
                if any(s[2] == d for s in conn.series or ()):
                    plots.sequence_graph(conn, os.path.join(plot_dir, f"conn{conn.index}-{name}-seq.{fmt}"), d)
                    plots.throughput(conn, os.path.join(plot_dir, f"conn{conn.index}-{name}-tput.{fmt}"), d)
    if as_json:
        emit_json(result.to_dict())
    else:
        render(result, console)
