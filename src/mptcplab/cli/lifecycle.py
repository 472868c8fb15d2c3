"""up, down, status, list, clean, explain, validate, presets."""

from __future__ import annotations

import click
from rich.table import Table

from mptcplab.cli.common import console, emit_json, err_console, json_option, lab_option

TOPOLOGY_HELP = "A topology TOML file, or a preset name (see `mptcplab presets`). Default: openwrt-vde."


@click.command()
@click.argument("topology", required=False, metavar="[FILE|PRESET]")
@click.option("--name", "name", metavar="LAB", help="Lab name (default: the topology's name). Namespaces are LAB-NODE.")
@click.option("--dry-run", is_flag=True, help="Print the bash script that builds the same lab, and build nothing.")
@json_option
def up(topology: str | None, name: str | None, dry_run: bool, as_json: bool) -> None:
    """Build a lab from a topology file or preset.

    \b
    Every node becomes a network namespace named LAB-NODE, so plain
    `ip netns exec LAB-NODE ...` works too. If anything fails, everything made so
    far is removed and the command exits non-zero with the reason.

    \b
    Examples:
      mptcplab up                      the seed testbed (preset openwrt-vde)
      mptcplab up two-paths --name t1  a second lab beside it
      mptcplab up my.toml --dry-run    the equivalent ip/sysctl script
    """
    from mptcplab.lab.lab import Lab, kernel_facts
    from mptcplab.plan.ops import script

    lab = Lab(topology, name)
    if dry_run:
        click.echo(script(lab.plan(kernel_facts()), f"lab {lab.name} from {lab.topology.source}"), nl=False)
        return
    with console.status(f"building lab {lab.name}...", spinner="dots"):
        lab.up()
    if as_json:
        emit_json({"lab": lab.name, "namespaces": lab.state.namespaces})
        return
    nodes = ", ".join(f"{n} ({lab.netns(n)})" for n in lab.resolved.nodes)
    console.print(f"[green]lab {lab.name} is up[/]: {nodes}")
    console.print(f"next: mptcplab check --lab {lab.name}   |   mptcplab status   |   mptcplab down --lab {lab.name}")


@click.command()
@lab_option
@click.option("--all", "all_labs", is_flag=True, help="Remove every lab (same as `clean`).")
def down(lab: str | None, all_labs: bool) -> None:
    """Tear a lab down: its processes, namespaces, cables and state, nothing left behind."""
    from mptcplab.lab import state as state_mod
    from mptcplab.lab.teardown import clean_all, destroy

    if all_labs:
        for name in clean_all():
            console.print(f"lab {name} removed")
        return
    st = state_mod.resolve(lab)
    destroy(st)
    console.print(f"lab {st.name} removed")


@click.command()
def clean() -> None:
    """Remove every trace of every lab, also after a crash or SIGKILL in the middle of `up`."""
    from mptcplab.lab.teardown import clean_all

    names = clean_all()
    console.print(f"removed {len(names)} lab(s){': ' + ', '.join(names) if names else ''}")


@click.command("list")
@json_option
def list_labs(as_json: bool) -> None:
    """Running labs, their source and nodes."""
    from mptcplab.lab import state as state_mod

    labs = []
    for name in state_mod.names():
        try:
            st = state_mod.load(name)
        except Exception as exc:  # a broken state file is shown, not fatal
            labs.append({"lab": name, "error": str(exc)})
            continue
        labs.append({"lab": name, "source": st.source, "complete": st.complete,
                     "nodes": list(st.topology.get("nodes", {})), "switches": list(st.topology.get("switches", {}))})
    if as_json:
        emit_json(labs)
        return
    if not labs:
        console.print("no labs running")
        return
    table = Table("lab", "source", "nodes", "switches", "state")
    for entry in labs:
        table.add_row(entry["lab"], entry.get("source", ""), " ".join(entry.get("nodes", [])),
                      " ".join(entry.get("switches", [])),
                      entry.get("error") or ("up" if entry.get("complete") else "incomplete (run `mptcplab clean`)"))
    console.print(table)


@click.command()
@lab_option
@json_option
def status(lab: str | None, as_json: bool) -> None:
    """Nodes, interfaces, addresses, link state and MPTCP endpoints, read from the kernel."""
    from mptcplab.lab.lab import Lab

    data = Lab.attach(lab).status()
    if as_json:
        emit_json(data)
        return
    table = Table("node", "interface", "state", "addresses", "bridge/VLAN", "MPTCP endpoint", title=f"lab {data['lab']}")
    for node, entry in data["nodes"].items():
        eps: dict[str, list[str]] = {}
        for e in entry.get("endpoints", []):
            eps.setdefault(e["dev"], []).append(f"id {e['id']} {','.join(e['flags'])}")
        for i, iface in enumerate(entry["interfaces"]):
            table.add_row(
                node if i == 0 else "", iface["name"],
                "[green]up[/]" if iface["state"] == "UP" else f"[red]{(iface['state'] or 'down').lower()}[/]",
                "\n".join(iface["addresses"]), iface["master"] or "",
                "\n".join(eps.get(iface["name"], [])) or ("off" if entry["kind"] != "switch" else ""),
            )
    console.print(table)


@click.command()
@click.argument("topology", required=False, metavar="[FILE|PRESET]")
@click.option("--name", "name", metavar="LAB", help="Lab name used in the commands.")
def explain(topology: str | None, name: str | None) -> None:
    """Print the plan as numbered commands, each with its undo."""
    from mptcplab.lab.lab import Lab, kernel_facts

    lab = Lab(topology, name)
    for i, op in enumerate(lab.plan(kernel_facts()), 1):
        console.print(f"[bold]{i:3d}[/] {op.command()}", highlight=False)
        console.print(f"     [dim]undo: {op.undo()}[/]", highlight=False)


@click.command()
@click.argument("topology", required=False, metavar="[FILE|PRESET]")
@click.option("--schema", is_flag=True, help="Print the JSON schema of topology files (for editors).")
def validate(topology: str | None, schema: bool) -> None:
    """Check a topology file and show what it resolves to, without building anything."""
    if schema:
        from mptcplab.model.topology import Topology

        emit_json(Topology.model_json_schema())
        return
    from mptcplab.model.load import load_topology

    loaded = load_topology(topology)
    table = Table("node", "interface", "addresses", "MPTCP", "gateway", "connected to", title=f"{loaded.source}: valid")
    for node in loaded.resolved.nodes.values():
        for i, iface in enumerate(node.interfaces):
            gateways = "\n".join(gw for _, gw in sorted(iface.gateways.items()))
            table.add_row(node.name if i == 0 else "", iface.name, "\n".join(iface.addresses),
                          ",".join(iface.flags) or "off", gateways, iface.peer)
    console.print(table)


@click.command()
def presets() -> None:
    """List the topologies shipped with mptcplab."""
    from mptcplab.model.load import presets as list_presets

    for name, desc in list_presets().items():
        console.print(f"[bold]{name}[/]  {desc}")
    err_console.print("[dim]use: mptcplab up PRESET, or mptcplab validate PRESET to see its addresses[/]")
