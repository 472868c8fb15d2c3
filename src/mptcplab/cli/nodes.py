"""Commands that act on one node or switch: exec, shell, endpoints, switch."""

from __future__ import annotations

import os
import shutil
import sys

import click
from rich.table import Table

from mptcplab.cli.common import console, emit_json, json_option, lab_option
from mptcplab.errors import LabError


def _mptcp_wrap(argv: list[str]) -> list[str]:
    """Run ARGV with its TCP sockets turned into MPTCP ones (mptcpize, from mptcpd)."""
    if shutil.which("mptcpize") is None:
        raise LabError("--mptcp needs `mptcpize` (Debian package mptcpd); iperf3 >= 3.19 can use its own -m instead")
    return ["mptcpize", "run", *argv]


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@lab_option
@click.option("--mptcp", is_flag=True, help="Run the command with MPTCP sockets (mptcpize run).")
@click.argument("node")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(lab: str | None, mptcp: bool, node: str, command: tuple[str, ...]) -> None:
    """Run COMMAND inside NODE and exit with its exit code.

    \b
    Examples:
      mptcplab exec a -- ip -br addr
      mptcplab exec --mptcp a -- curl http://10.168.1.2:8080/
      mptcplab exec --mptcp b -- iperf3 -s -1
    """
    argv = list(command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise click.UsageError("no command given; e.g. mptcplab exec a -- ip -br addr")
    if mptcp:
        argv = _mptcp_wrap(argv)
    elif shutil.which(argv[0]) is None:
        raise LabError(f"{argv[0]}: command not found")
    _exec_in(lab, node, argv)


def _exec_in(lab: str | None, node: str, argv: list[str], env: dict[str, str] | None = None) -> None:
    """Replace this process by ARGV inside NODE: exit code, signals and terminal pass through."""
    from mptcplab.kernel import netns
    from mptcplab.lab import state

    full = netns.argv(state.resolve(lab).netns(node), argv)
    sys.stdout.flush()
    os.execvpe(full[0], full, env or dict(os.environ))


@click.command()
@lab_option
@click.argument("node")
def shell(lab: str | None, node: str) -> None:
    """Open an interactive shell inside NODE (exit it to come back)."""
    from mptcplab.lab import state

    st = state.resolve(lab)
    st.netns(node)
    env = dict(os.environ, PS1=f"[{st.name}:{node}] \\w# ", MPTCPLAB_LAB=st.name, MPTCPLAB_NODE=node)
    shell_bin = os.environ.get("SHELL") or "/bin/bash"
    argv = [shell_bin, "--norc", "-i"] if shell_bin.endswith("bash") else [shell_bin, "-i"]
    _exec_in(lab, node, argv, env)


@click.command()
@lab_option
@json_option
@click.argument("node")
def endpoints(lab: str | None, as_json: bool, node: str) -> None:
    """NODE's MPTCP endpoints as the kernel has them (the seed's `multipath -f`)."""
    from mptcplab.kernel.mptcp_pm import MptcpPM
    from mptcplab.lab.lab import Lab

    handle = Lab.attach(lab)
    eps = handle.endpoints(node)
    with MptcpPM(handle.netns(node)) as pm:
        limits = pm.limits()
    if as_json:
        emit_json({"node": node, "endpoints": eps, "limits": {"subflows": limits.subflows, "add_addr_accepted": limits.add_addr_accepted}})
        return
    table = Table("index", "address id", "flags", "address", "dev", title=f"{handle.name}:{node} MPTCP endpoints")
    for i, e in enumerate(eps, 1):
        table.add_row(str(i), str(e["id"]), ",".join(e["flags"]) or "-", e["addr"] + (f" port {e['port']}" if e["port"] else ""), e["dev"] or "")
    console.print(table)
    console.print(f"limits: subflows {limits.subflows}, add_addr_accepted {limits.add_addr_accepted}")


@click.command()
@lab_option
@click.argument("switch_name", metavar="SWITCH")
@click.argument("port_word", metavar="port", type=click.Choice(["port"]))
@click.argument("port", type=int)
@click.argument("vlan_word", metavar="vlan", type=click.Choice(["vlan"]))
@click.argument("vlan", type=int)
def switch(lab: str | None, switch_name: str, port_word: str, port: int, vlan_word: str, vlan: int) -> None:
    """Move a switch port to another VLAN, like the seed's `port/setvlan P V`.

    \b
    Example (cut path 1 of openwrt-vde, then restore it):
      mptcplab switch sw port 10 vlan 4
      mptcplab switch sw port 10 vlan 1
    """
    from mptcplab.lab.lab import Lab

    old = Lab.attach(lab).set_port_vlan(switch_name, port, vlan)
    console.print(f"{switch_name} port {port}: VLAN {old} -> {vlan}")
