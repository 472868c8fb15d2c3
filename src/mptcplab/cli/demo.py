"""`mptcplab demo`: the seed testbed's story in one command."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from mptcplab.cli.common import console


@click.command()
@click.option("--name", "name", default=None, metavar="LAB", help="Lab name (default: demo-<pid>).")
@click.option("--keep", is_flag=True, help="Leave the lab running afterwards (remove it with `mptcplab down`).")
def demo(name: str | None, keep: bool) -> None:
    """Build the seed's two-node testbed (openwrt-vde), check it, show endpoints, cut a path.

    \b
    1. up: nodes a and b, switch sw with VLANs 1-4, management on VLAN 3 (MPTCP off);
    2. check: MPTCP on, every path pings, curl under mptcpize is told it uses MPTCP;
    3. endpoints of a and b (the seed's `multipath -f`);
    4. `switch sw port 10 vlan 4` (the seed's `port/setvlan 10 4`): path 1 is cut,
       path 2 still answers; then port 10 goes back to VLAN 1;
    5. down (unless --keep).
    """
    import os

    from mptcplab.lab.check import run_check
    from mptcplab.lab.lab import Lab

    lab = Lab("openwrt-vde", name or f"demo-{os.getpid()}")
    console.rule(f"[bold]1. up[/]: the seed testbed as lab {lab.name}")
    with console.status("building...", spinner="dots"):
        lab.up()
    try:
        console.print(f"namespaces: {', '.join(lab.state.namespaces)}")
        console.rule("[bold]2. check[/]")
        results = run_check(lab)
        failed = [r for r in results if not r.ok]
        pings = [r for r in results if r.check == "ping"]
        console.print(f"mptcp enabled on {sum(r.ok for r in results if r.check == 'mptcp enabled')} nodes; "
                      f"{sum(r.ok for r in pings)}/{len(pings)} pings answered")
        for r in results:
            if r.check not in ("ping", "mptcp enabled") or not r.ok:
                console.print(f"  {'[green]pass[/]' if r.ok else '[red]FAIL[/]'} {r.check}: {r.detail}")
        console.rule("[bold]3. endpoints[/] (multipath -f)")
        for node in ("a", "b"):
            table = Table("address id", "flags", "address", "dev", title=f"node {node}")
            for e in lab.endpoints(node):
                table.add_row(str(e["id"]), ",".join(e["flags"]), e["addr"], e["dev"] or "")
            console.print(table)
        console.rule("[bold]4. port/setvlan 10 4[/]: cut path 1")
        lab.set_port_vlan("sw", 10, 4)
        p1 = lab.run("a", ["ping", "-c1", "-W1", "10.168.1.2"]).returncode == 0
        p2 = lab.run("a", ["ping", "-c1", "-W1", "10.168.2.2"]).returncode == 0
        console.print(f"path 1 (10.168.1.0/24) {'still answers' if p1 else 'is cut'}; path 2 (10.168.2.0/24) {'answers' if p2 else 'is cut too'}")
        lab.set_port_vlan("sw", 10, 1)
        back = lab.run("a", ["ping", "-c1", "-W1", "10.168.1.2"]).returncode == 0
        console.print(f"port 10 back on VLAN 1: path 1 {'answers again' if back else 'still cut'}")
        ok = not failed and not p1 and p2 and back
    finally:
        if keep:
            console.print(f"lab {lab.name} left running: mptcplab down --lab {lab.name}")
        else:
            console.rule("[bold]5. down[/]")
            lab.down()
            console.print("lab removed")
    console.print("[green]demo passed[/]" if ok else "[red]demo found a problem (see above)[/]")
    sys.exit(0 if ok else 1)
