"""Userspace path-manager commands: `subflow add|del|list`, `announce`, `remove`, `prio`.

Each acts on one MPTCP connection of a node: the one given by --token (hexadecimal, as
`ip mptcp monitor` and `mptcplab monitor` print it) or, when omitted, the only one there.
Connections and subflows are found through the kernel's inet_diag (what `ss -M` and
`ss -ti` show), never by parsing text. The node's net.mptcp.path_manager must be
"userspace" (when the connection was made): the in-kernel path manager ignores these.
"""

from __future__ import annotations

import click

from mptcplab.cli.common import emit_json, json_option, lab_option
from mptcplab.cli.monitor import namespace_of, netns_option
from mptcplab.errors import LabError


class TokenType(click.ParamType):
    """An MPTCP token: 32 bits in hexadecimal, with or without 0x."""

    name = "TOKEN"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201 - click's signature
        if isinstance(value, int):
            return value
        try:
            token = int(value, 16)
        except ValueError:
            self.fail(f"{value!r} is not a hexadecimal token", param, ctx)
        if not 0 <= token <= 0xFFFFFFFF:
            self.fail(f"{value!r} does not fit in 32 bits", param, ctx)
        return token


def _common(f):  # noqa: ANN001, ANN202 - decorator
    f = click.option("--token", type=TokenType(), default=None,
                     help="Connection token in hex (default: the node's only MPTCP connection).")(f)
    f = netns_option(f)
    f = lab_option(f)
    return click.argument("node", required=False)(f)


def _target(node: str | None, lab: str | None, netns_name: str | None, token: int | None):  # noqa: ANN202
    """(namespace, label, connection) after checking the path manager and the connection."""
    from mptcplab.kernel import mptcp_pm

    ns, label = namespace_of(node, lab, netns_name)
    pm = mptcp_pm.path_manager(ns)
    if pm != "userspace":
        raise LabError(
            f"{label} uses the {pm} path manager; these commands need "
            "net.mptcp.path_manager=userspace there (set before the connection is made)"
        )
    conns = [c for c in mptcp_pm.connections(ns) if not c.fallback]
    if token is not None:
        match = [c for c in conns if c.token == token]
        if not match:
            raise LabError(f"{label} has no MPTCP connection with token {token:08x} ({_describe(conns)})")
        return ns, label, match[0]
    if not conns:
        raise LabError(f"{label} has no established MPTCP connection")
    if len(conns) > 1:
        raise LabError(f"{label} has {len(conns)} MPTCP connections; choose one with --token "
                       f"({_describe(conns)})")
    return ns, label, conns[0]


def _describe(conns) -> str:  # noqa: ANN001
    if not conns:
        return "it has none"
    return "; ".join(f"{c.token:08x} {_ep(c.saddr, c.sport)} -> {_ep(c.daddr, c.dport)}" for c in conns)


def _ep(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _ifindex(ns: str, dev: str | None) -> int | None:
    if dev is None:
        return None
    import socket

    from mptcplab.kernel import netns

    with netns.enter(ns):
        try:
            return socket.if_nametoindex(dev)
        except OSError:
            raise LabError(f"no interface {dev!r} in namespace {ns}") from None


def _pm(ns: str):  # noqa: ANN202
    from mptcplab.kernel.mptcp_pm import MptcpPM

    return MptcpPM(ns)


def _pick_subflow(ns: str, label: str, conn, local: str | None, local_port: int | None,  # noqa: ANN001
                  remote: str | None, remote_port: int | None):  # noqa: ANN202
    """The one subflow of CONN matching what was given (any field may be left out)."""
    from mptcplab.kernel import mptcp_pm

    sfs = mptcp_pm.subflows(ns, conn.token)
    match = [s for s in sfs
             if (local is None or s.saddr == local) and (local_port is None or s.sport == local_port)
             and (remote is None or s.daddr == remote) and (remote_port is None or s.dport == remote_port)]
    listing = "; ".join(f"{_ep(s.saddr, s.sport)} -> {_ep(s.daddr, s.dport)}" for s in sfs) or "none"
    if len(match) != 1:
        what = "no subflow" if not match else f"{len(match)} subflows"
        raise LabError(f"{label}: {what} of token {conn.token:08x} match; narrow it down with "
                       f"--local/--local-port/--remote/--remote-port (subflows: {listing})")
    return match[0]


@click.group()
def subflow() -> None:
    """Create, destroy or list the subflows of a connection (userspace path manager)."""


@subflow.command("add")
@_common
@click.option("--local", "local", required=True, metavar="ADDR", help="Local address of the new subflow.")
@click.option("--local-id", type=click.IntRange(0, 255), default=0, show_default=True,
              help="Address id of the local address (0: the kernel's choice).")
@click.option("--remote", "remote", required=True, metavar="ADDR", help="Peer address to connect to.")
@click.option("--remote-port", type=click.IntRange(1, 65535), default=None,
              help="Peer port (default: the connection's peer port).")
@click.option("--dev", default=None, metavar="IF", help="Bind the subflow to this interface.")
def subflow_add(node, lab, netns_name, token, local, local_id, remote, remote_port, dev) -> None:  # noqa: ANN001
    """Open a subflow from --local to --remote on NODE's connection.

    \b
    Example:  mptcplab subflow add a --local 10.0.2.1 --remote 10.0.2.2
    """
    ns, label, conn = _target(node, lab, netns_name, token)
    port = remote_port or conn.dport
    with _pm(ns) as pm:
        pm.subflow_create(conn.token, local, local_id, remote, port, ifindex=_ifindex(ns, dev))
    click.echo(f"{label}: subflow {local} -> {_ep(remote, port)} requested on token {conn.token:08x}")


@subflow.command("del")
@_common
@click.option("--local", "local", default=None, metavar="ADDR", help="Local address of the subflow.")
@click.option("--local-port", type=click.IntRange(1, 65535), default=None)
@click.option("--remote", "remote", default=None, metavar="ADDR", help="Peer address of the subflow.")
@click.option("--remote-port", type=click.IntRange(1, 65535), default=None)
def subflow_del(node, lab, netns_name, token, local, local_port, remote, remote_port) -> None:  # noqa: ANN001
    """Close one subflow of NODE's connection; give what identifies it uniquely.

    \b
    Example:  mptcplab subflow del a --local 10.0.2.1
    """
    ns, label, conn = _target(node, lab, netns_name, token)
    sf = _pick_subflow(ns, label, conn, local, local_port, remote, remote_port)
    with _pm(ns) as pm:
        pm.subflow_destroy(conn.token, sf.saddr, sf.sport, sf.daddr, sf.dport)
    click.echo(f"{label}: subflow {_ep(sf.saddr, sf.sport)} -> {_ep(sf.daddr, sf.dport)} "
               f"of token {conn.token:08x} closed")


@subflow.command("list")
@_common
@json_option
def subflow_list(node, lab, netns_name, token, as_json) -> None:  # noqa: ANN001
    """The subflows of NODE's connection (any path manager)."""
    from mptcplab.kernel import mptcp_pm

    ns, label = namespace_of(node, lab, netns_name)
    sfs = [s for s in mptcp_pm.subflows(ns) if token is None or s.token == token]
    if as_json:
        emit_json([s.to_dict() for s in sfs])
        return
    if not sfs:
        click.echo(f"{label}: no MPTCP subflow")
    for s in sfs:
        flags = " backup" if s.backup else ""
        flags += " peer-backup" if s.peer_backup else ""
        click.echo(f"token={s.token:08x} locid={s.loc_id} remid={s.rem_id} "
                   f"{_ep(s.saddr, s.sport)} -> {_ep(s.daddr, s.dport)}{flags}")


@click.command()
@_common
@click.argument("addr", required=False)
@click.option("--id", "addr_id", type=click.IntRange(1, 255), required=True, help="Address id to announce.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port to announce with it.")
@click.option("--dev", default=None, metavar="IF", help="Interface of the address.")
def announce(node, lab, netns_name, token, addr, addr_id, port, dev) -> None:  # noqa: ANN001
    """Announce ADDR to the peer (ADD_ADDR) on NODE's connection.

    \b
    Examples:  mptcplab announce b 10.0.2.2 --id 5
               mptcplab announce --netns myns 10.0.2.2 --id 5
    """
    if addr is None and netns_name is not None:
        node, addr = None, node  # with --netns the only word is the address
    if addr is None:
        raise click.UsageError("missing ADDR (usage: announce NODE ADDR --id N)")
    ns, label, conn = _target(node, lab, netns_name, token)
    with _pm(ns) as pm:
        pm.announce(conn.token, addr, addr_id, port=port, ifindex=_ifindex(ns, dev))
    click.echo(f"{label}: announced {addr} id {addr_id} on token {conn.token:08x}")


@click.command()
@_common
@click.option("--id", "addr_id", type=click.IntRange(0, 255), required=True, help="Address id to withdraw.")
def remove(node, lab, netns_name, token, addr_id) -> None:  # noqa: ANN001
    """Withdraw address id --id (REMOVE_ADDR) and close its subflows on NODE's connection."""
    ns, label, conn = _target(node, lab, netns_name, token)
    with _pm(ns) as pm:
        pm.remove(conn.token, addr_id)
    click.echo(f"{label}: removed address id {addr_id} on token {conn.token:08x}")


@click.command()
@_common
@click.option("--local", "local", default=None, metavar="ADDR", help="Local address of the subflow.")
@click.option("--local-port", type=click.IntRange(1, 65535), default=None)
@click.option("--remote", "remote", default=None, metavar="ADDR", help="Peer address of the subflow.")
@click.option("--remote-port", type=click.IntRange(1, 65535), default=None)
@click.option("--backup/--no-backup", default=None, help="Mark the subflow backup, or not (required).")
def prio(node, lab, netns_name, token, local, local_port, remote, remote_port, backup) -> None:  # noqa: ANN001
    """Ask the peer to use a subflow only as backup, or normally again (MP_PRIO).

    \b
    Example:  mptcplab prio a --local 10.0.2.1 --backup
    """
    if backup is None:
        raise click.UsageError("give --backup or --no-backup")
    ns, label, conn = _target(node, lab, netns_name, token)
    sf = _pick_subflow(ns, label, conn, local, local_port, remote, remote_port)
    with _pm(ns) as pm:
        pm.set_prio(conn.token, sf.saddr, sf.sport, sf.daddr, sf.dport, backup)
    click.echo(f"{label}: subflow {_ep(sf.saddr, sf.sport)} -> {_ep(sf.daddr, sf.dport)} "
               f"{'backup' if backup else 'no longer backup'}")
