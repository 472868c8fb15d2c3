"""The `mptcplab` command: a click group whose subcommands load only when used.

Each entry names "module:attribute" of a click command; importing them lazily keeps
`mptcplab --help` and pure commands instant (pyroute2 alone costs a tenth of a second).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from mptcplab import __version__
from mptcplab.errors import MptcplabError

# name -> (module, attribute, one-line help shown by `mptcplab --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "up": ("mptcplab.cli.lifecycle", "up", "Build a lab from a topology file or preset."),
    "down": ("mptcplab.cli.lifecycle", "down", "Tear a lab down, leaving nothing behind."),
    "status": ("mptcplab.cli.lifecycle", "status", "Nodes, interfaces, addresses, links, endpoints."),
    "list": ("mptcplab.cli.lifecycle", "list_labs", "Running labs."),
    "clean": ("mptcplab.cli.lifecycle", "clean", "Remove every trace of every lab (also after a crash)."),
    "exec": ("mptcplab.cli.nodes", "exec_", "Run a command inside a node."),
    "shell": ("mptcplab.cli.nodes", "shell", "Open a shell inside a node."),
    "endpoints": ("mptcplab.cli.nodes", "endpoints", "A node's MPTCP endpoints (the seed's `multipath -f`)."),
    "switch": ("mptcplab.cli.nodes", "switch", "Move a switch port to another VLAN (`port/setvlan`)."),
    "link": ("mptcplab.cli.link", "link", "Show, change, cut or restore a link."),
    "check": ("mptcplab.cli.check", "check", "Is MPTCP on, does every path ping, is MPTCP used?"),
    "explain": ("mptcplab.cli.lifecycle", "explain", "Print the plan of a topology as annotated commands."),
    "validate": ("mptcplab.cli.lifecycle", "validate", "Check a topology file without building anything."),
    "presets": ("mptcplab.cli.lifecycle", "presets", "List the topologies shipped with mptcplab."),
    "doctor": ("mptcplab.cli.doctor", "doctor", "What this kernel offers the lab, and how each impairment is emulated."),
    "perf": ("mptcplab.cli.perf", "perf", "MPTCP traffic with per-subflow telemetry."),
    "monitor": ("mptcplab.cli.monitor", "monitor", "Path-manager events of a node, like `ip mptcp monitor`."),
    "subflow": ("mptcplab.cli.pm", "subflow", "Create or destroy a subflow (userspace path manager)."),
    "announce": ("mptcplab.cli.pm", "announce", "Announce an address on a connection (userspace PM)."),
    "remove": ("mptcplab.cli.pm", "remove", "Withdraw an announced address (userspace PM)."),
    "prio": ("mptcplab.cli.pm", "prio", "Mark a subflow backup or not."),
    "analyze": ("mptcplab.cli.analyze", "analyze", "Turn pcaps into MPTCP connections, subflows and mappings."),
    "demo": ("mptcplab.cli.demo", "demo", "The seed testbed's story in one command."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or not _available(cmd_name):
            return None
        module, attr, _ = entry
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _available(name: str) -> bool:
    """A command is listed only when its module ships (no placeholder commands)."""
    return importlib.util.find_spec(COMMANDS[name][0]) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mptcplab")
def cli() -> None:
    """Build Multipath TCP test networks, break them on purpose, and see what MPTCP did.

    \b
    Start here:
      mptcplab demo                  the seed testbed's story, end to end
      mptcplab up openwrt-vde        build the default lab (nodes a and b, switch sw)
      mptcplab check                 MPTCP on? every path pings? MPTCP really used?
      mptcplab endpoints a           a node's MPTCP endpoints
      mptcplab switch sw port 10 vlan 4   cut path 1, like the seed's port/setvlan
      mptcplab down                  remove the lab
    """


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        rv = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MptcplabError as exc:
        click.echo(f"mptcplab: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    else:
        sys.exit(rv if isinstance(rv, int) else 0)
