"""`mptcplab perf`: MPTCP traffic with per-subflow telemetry.

    mptcplab perf [--lab L] CLIENT SERVER [options]   inside a lab
    mptcplab perf server [--bind ADDR] [--port P]     standalone, on any Linux host
    mptcplab perf client HOST [options]               standalone
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from mptcplab.cli.common import emit_json, json_option, lab_option

DEFAULT_PORT = 5201  # same as mptcplab.workloads.perf.protocol.DEFAULT_PORT (kept import-free)


def _client_options(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("-p", "--port", type=int, default=DEFAULT_PORT, show_default=True, help="Server port."),
        click.option("-t", "--time", "duration", type=float, default=None, help="Seconds to send (default 10)."),
        click.option("-n", "--bytes", "nbytes", default=None, metavar="SIZE",
                     help="Bytes to send per stream instead of a duration (16M, 1G...)."),
        click.option("-P", "--parallel", "streams", type=int, default=1, show_default=True,
                     help="Parallel connections."),
        click.option("-R", "--reverse", is_flag=True, help="Server sends (download)."),
        click.option("--bidir", is_flag=True, help="Both directions at once (one connection each way)."),
        click.option("-b", "--rate", default=None, metavar="RATE",
                     help="Target rate per direction, all streams together (10M, 1.5G bit/s)."),
        click.option("--tcp", is_flag=True, help="Plain TCP instead of MPTCP (a baseline)."),
        click.option("--sample-interval", type=float, default=0.1, show_default=True,
                     help="Seconds between per-subflow samples (0: only a final one)."),
        click.option("-i", "--interval", type=float, default=1.0, show_default=True,
                     help="Seconds per report interval."),
        click.option("-C", "--congestion", default=None, metavar="ALGO",
                     help="TCP congestion control of the data connections (cubic, bbr, reno...)."),
        click.option("--no-verify", is_flag=True, help="Count bytes only, skip the receiver's CRC-32."),
        click.option("--subflow-at", "subflow_at", multiple=True, metavar="SPEC",
                     help="TIME:add:LOCAL[#ID][@REMOTE] or TIME:del:LOCAL (userspace path manager)."),
        json_option,
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _client_kwargs(duration: float | None, nbytes: str | None, streams: int, reverse: bool, bidir: bool,
                   rate: str | None, sample_interval: float, interval: float, congestion: str | None,
                   no_verify: bool, subflow_at: tuple[str, ...]) -> dict[str, Any]:
    from mptcplab.workloads.perf.schedule import parse as parse_spec
    from mptcplab.workloads.perf.units import parse_rate, parse_size

    if reverse and bidir:
        raise click.UsageError("--reverse and --bidir exclude each other")
    if duration is not None and nbytes is not None:
        raise click.UsageError("-t/--time and -n/--bytes exclude each other")
    return {
        "duration": duration if duration is not None else (None if nbytes else 10.0),
        "nbytes": parse_size(nbytes) if nbytes else None,
        "streams": streams, "mode": "bidir" if bidir else ("download" if reverse else "upload"),
        "rate_bps": parse_rate(rate) if rate else None, "sample_interval": sample_interval,
        "interval": interval, "congestion": congestion, "verify": not no_verify,
        "subflow_at": [parse_spec(s, i) for i, s in enumerate(subflow_at)],
    }


def _print_interval(entry: dict[str, Any], first: list[bool]) -> None:
    from mptcplab.workloads.perf.report import interval_header, interval_lines

    if first[0]:
        click.echo(interval_header())
        first[0] = False
    for line in interval_lines(entry):
        click.echo(line)
    sys.stdout.flush()


def _finish(result: Any, as_json: bool) -> None:
    from mptcplab.workloads.perf.report import summary_lines

    if as_json:
        emit_json(result.to_dict())
    else:
        for line in summary_lines(result):
            click.echo(line)
    if not result.ok:
        sys.exit(1)


class PerfGroup(click.Group):
    """`perf server`, `perf client`, and by default the lab form `perf CLIENT SERVER`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["lab", *args]
        return super().parse_args(ctx, args)


@click.group(cls=PerfGroup)
def perf() -> None:
    """MPTCP traffic with per-subflow telemetry (MPTCP_FULL_INFO), checked end to end.

    \b
    In a lab:    mptcplab perf [--lab L] CLIENT SERVER [-t 10 | -n 1G] [-P 2] [-R | --bidir]
    Standalone:  mptcplab perf server [--port 5201]
                 mptcplab perf client HOST [options]

    Every interval shows each connection and, under it, one line per subflow: addresses,
    bytes, throughput, cwnd, RTT, retransmits. --json gives the whole time series.
    """


@perf.command("lab")
@lab_option
@click.argument("client_node", metavar="CLIENT")
@click.argument("server_node", metavar="SERVER")
@click.option("-6", "ipv6", is_flag=True, help="Use the server node's IPv6 address.")
@_client_options
def lab_cmd(lab: str | None, client_node: str, server_node: str, ipv6: bool, port: int, tcp: bool,
            as_json: bool, **opts: Any) -> None:
    """Traffic from node CLIENT to a perf server started on node SERVER."""
    from mptcplab.workloads.perf.lab import run_in_lab

    kwargs = _client_kwargs(**opts)
    first = [True]
    if not as_json:
        click.echo(f"perf: {client_node} -> {server_node} ({'TCP' if tcp else 'MPTCP'}), "
                   f"server started in {server_node}'s namespace")
    result, _ = run_in_lab(lab, client_node, server_node, port=port, tcp=tcp, family=6 if ipv6 else 4,
                           on_interval=None if as_json else (lambda e: _print_interval(e, first)),
                           on_server_line=None if as_json else (lambda line: click.echo(f"server: {line}")),
                           **kwargs)
    _finish(result, as_json)


@perf.command("client")
@click.argument("host")
@_client_options
def client_cmd(host: str, port: int, tcp: bool, as_json: bool, **opts: Any) -> None:
    """Run a test against `mptcplab perf server` on HOST."""
    from mptcplab.workloads.perf.client import run_client

    kwargs = _client_kwargs(**opts)
    first = [True]
    if not as_json:
        click.echo(f"Connecting to {host} port {port} ({'TCP' if tcp else 'MPTCP'})")
    result = run_client(host, port, tcp=tcp,
                        on_interval=None if as_json else (lambda e: _print_interval(e, first)), **kwargs)
    _finish(result, as_json)


@perf.command("server")
@click.option("--bind", default=None, metavar="ADDR", help="Address to listen on (default: all, v4 and v6).")
@click.option("-p", "--port", type=int, default=DEFAULT_PORT, show_default=True)
@click.option("--tcp", is_flag=True, help="Listen with a plain TCP socket (MPTCP listeners also take TCP).")
@click.option("-1", "--one-off", is_flag=True, help="Exit after one test.")
def server_cmd(bind: str | None, port: int, tcp: bool, one_off: bool) -> None:
    """Serve perf tests until interrupted."""
    from mptcplab.workloads.perf.lab import READY_PREFIX
    from mptcplab.workloads.perf.server import Server

    def log(msg: str) -> None:
        click.echo(msg)
        sys.stdout.flush()

    srv = Server(bind, port, tcp=tcp, one_off=one_off, log=log).start()
    host, real_port = srv.address
    log(f"{READY_PREFIX}{'[' + host + ']' if ':' in host else host}:{real_port} ({'TCP' if tcp else 'MPTCP'})")
    srv.serve_forever()
