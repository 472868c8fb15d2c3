"""`mptcplab monitor NODE`: a node's path-manager events, like `ip mptcp monitor`, timestamped.

Text lines keep `ip mptcp monitor`'s vocabulary (CREATED, SF_ESTABLISHED, token in hex,
remid/locid) so its readers feel at home; --json prints one JSON object per line.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime

import click

from mptcplab.cli.common import lab_option
from mptcplab.errors import LabError

netns_option = click.option(
    "--netns", "netns_name", metavar="NAME", default=None,
    help="Act on this network namespace directly instead of a lab node.",
)

# our event kinds -> the names `ip mptcp monitor` prints
IP_NAMES = {
    "created": "CREATED", "established": "ESTABLISHED", "closed": "CLOSED",
    "announced": "ANNOUNCED", "removed": "REMOVED", "sf_established": "SF_ESTABLISHED",
    "sf_closed": "SF_CLOSED", "sf_priority": "SF_PRIO", "listener_created": "LISTENER_CREATED",
    "listener_closed": "LISTENER_CLOSED",
}


def namespace_of(node: str | None, lab: str | None, netns_name: str | None) -> tuple[str, str]:
    """(namespace, label for messages) from NODE [--lab] or --netns; checks that it exists."""
    from mptcplab.kernel import netns

    if netns_name is not None:
        if node is not None:
            raise click.UsageError("give a NODE or --netns, not both")
        ns, label = netns_name, f"namespace {netns_name}"
    elif node is None:
        raise click.UsageError("missing NODE (or --netns NAME)")
    else:
        from mptcplab.lab import state

        ns, label = state.resolve(lab).netns(node), f"node {node}"
    if not netns.exists(ns):
        raise LabError(f"{label}: network namespace {ns!r} does not exist")
    return ns, label


def format_event(ev) -> str:  # noqa: ANN001 - a PMEvent; imported lazily
    """One line: local time with microseconds, then `ip mptcp monitor`'s fields."""
    stamp = datetime.fromtimestamp(ev.time).strftime("%H:%M:%S.%f")
    parts = [f"{stamp} [{IP_NAMES.get(ev.kind, ev.kind.upper()):>16}]"]
    if ev.token is not None:
        parts.append(f"token={ev.token:08x}")
    for key, value in (("remid", ev.rem_id), ("locid", ev.loc_id), ("saddr", ev.saddr),
                       ("daddr", ev.daddr), ("sport", ev.sport), ("dport", ev.dport)):
        if value is not None:
            parts.append(f"{key}={value}")
    if ev.backup is not None:
        parts.append(f"backup={int(ev.backup)}")
    if ev.ifindex is not None:
        parts.append(f"ifindex={ev.ifindex}")
    if ev.error is not None:
        parts.append(f"error={ev.error}")
    if ev.server_side:
        parts.append("server_side")
    return " ".join(parts)


def _emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()  # a monitor is read live, also through a pipe


@click.command()
@click.argument("node", required=False)
@lab_option
@netns_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event and line.")
@click.option("--count", type=click.IntRange(min=1), default=None, metavar="N",
              help="Stop after N events (exit 1 if --timeout comes first).")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, metavar="S",
              help="Stop after S seconds.")
def monitor(node: str | None, lab: str | None, netns_name: str | None, as_json: bool,
            count: int | None, timeout: float | None) -> None:
    """Print the path-manager events of NODE as they happen (Ctrl-C stops).

    \b
    Examples:
      mptcplab monitor a
      mptcplab monitor a --json --count 3 --timeout 10
      mptcplab monitor --netns myns
    """
    from mptcplab.kernel.mptcp_pm import PMEventListener

    ns, label = namespace_of(node, lab, netns_name)
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    with PMEventListener(ns) as listener:
        # on stderr, once subscribed: a script may wait for this line before acting
        sys.stderr.write(f"monitoring MPTCP path-manager events of {label} ({ns})\n")
        sys.stderr.flush()
        try:
            while count is None or seen < count:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                for ev in listener.read(left):
                    _emit(json.dumps(ev.to_dict()) if as_json else format_event(ev))
                    seen += 1
                    if count is not None and seen >= count:
                        break
        except KeyboardInterrupt:
            return
        finally:
            if listener.overruns:
                click.echo(f"mptcplab: warning: the kernel dropped events {listener.overruns} time(s) "
                           "(read too slowly)", err=True)
    if count is not None and seen < count:
        click.echo(f"mptcplab: {seen} of {count} events within {timeout} s", err=True)
        sys.exit(1)
