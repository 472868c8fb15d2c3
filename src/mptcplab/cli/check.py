"""`mptcplab check`: the seed's checks (mptcp_enabled, pingtest, "am I using MPTCP")."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from mptcplab.cli.common import console, emit_json, json_option, lab_option


@click.command()
@lab_option
@json_option
@click.option("--client", metavar="NODE", help="Node that asks the MPTCP check server (default: first host).")
@click.option("--server", metavar="NODE", help="Node that runs the MPTCP check server (default: last host).")
def check(lab: str | None, as_json: bool, client: str | None, server: str | None) -> None:
    """Is MPTCP on, does every path ping, and is MPTCP really used?

    \b
    1. net.mptcp.enabled in every node, as the topology says;
    2. ping from every source address of every host to every address of the
       others, IPv4 and IPv6 (the seed's pingtest);
    3. an "am I using MPTCP" HTTP server on SERVER, asked by curl on CLIENT under
       mptcpize (must answer "You are using MPTCP.") and by plain curl (must answer
       "You are not using MPTCP.").
    Exit code 0 when all pass, 1 otherwise.
    """
    from mptcplab.lab.check import run_check
    from mptcplab.lab.lab import Lab

    handle = Lab.attach(lab)
    with console.status("checking...", spinner="dots"):
        results = run_check(handle, client, server)
    failed = [r for r in results if not r.ok]
    if as_json:
        emit_json({"lab": handle.name, "passed": not failed, "results": [r.to_dict() for r in results]})
    else:
        table = Table("check", "from", "to", "result", "detail", title=f"lab {handle.name}")
        for r in results:
            table.add_row(r.check, r.source, r.target, "[green]pass[/]" if r.ok else "[red]FAIL[/]", r.detail)
        console.print(table)
        console.print(f"[green]all {len(results)} checks passed[/]" if not failed else f"[red]{len(failed)} of {len(results)} checks failed[/]")
    sys.exit(1 if failed else 0)
