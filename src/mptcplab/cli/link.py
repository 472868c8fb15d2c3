"""`mptcplab link`: cut and restore links."""

from __future__ import annotations

import click

from mptcplab.cli.common import console, lab_option


@click.group()
@lab_option
@click.pass_context
def link(ctx: click.Context, lab: str | None) -> None:
    """Cut or restore a link.

    \\b
    NAME is a link's name (from the topology file) or NODE:IFACE, for an interface
    plugged into a switch as well as for one end of a link.
      mptcplab link down path1
      mptcplab link up a:eth0
    """


def _set(lab: str | None, name: str, up: bool) -> None:
    from mptcplab.lab.lab import Lab

    lab = lab or click.get_current_context().parent.params.get("lab")
    Lab.attach(lab).set_link_state(name, up)
    console.print(f"link {name} {'up' if up else 'down'}")


@link.command("down")
@lab_option
@click.argument("name")
def link_down(lab: str | None, name: str) -> None:
    """Take both ends of link NAME down (carrier lost on both sides)."""
    _set(lab, name, False)


@link.command("up")
@lab_option
@click.argument("name")
def link_up(lab: str | None, name: str) -> None:
    """Bring both ends of link NAME back up."""
    _set(lab, name, True)
