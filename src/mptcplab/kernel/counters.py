"""MPTcpExt counters of a network namespace (what `nstat -asz 'MPTcp*'` shows), snapshots and deltas.

/proc/net/netstat holds pairs of lines: a header ("MPTcpExt: Name1 Name2 ...") and the
values ("MPTcpExt: 1 2 ..."). The file shows the namespace of the reading *thread* only
through /proc/thread-self/net: /proc/self/net follows the process's main thread, so a
thread that did setns must read /proc/thread-self/net/netstat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mptcplab.kernel import netns as _netns

NETSTAT = "/proc/thread-self/net/netstat"


def parse_netstat(text: str, prefix: str = "MPTcpExt") -> dict[str, int]:
    """Counters of one group (default MPTcpExt) from the text of /proc/net/netstat."""
    lines = text.splitlines()
    for header, values in zip(lines, lines[1:], strict=False):
        if header.startswith(prefix + ":") and values.startswith(prefix + ":"):
            names = header.split()[1:]
            nums = values.split()[1:]
            if len(names) != len(nums):
                raise ValueError(f"{prefix}: {len(names)} names but {len(nums)} values")
            return {n: int(v) for n, v in zip(names, nums, strict=True)}
    return {}


def read(netns: str | None = None, prefix: str = "MPTcpExt") -> dict[str, int]:
    """Current counters of namespace NETNS (None: this thread's namespace)."""
    with _netns.enter(netns), open(NETSTAT) as fh:
        return parse_netstat(fh.read(), prefix)


@dataclass
class Snapshot:
    """Counters at one instant."""

    values: dict[str, int]
    time: float = field(default_factory=time.time)

    def delta(self, later: Snapshot) -> dict[str, int]:
        return delta(self.values, later.values)


def snapshot(netns: str | None = None) -> Snapshot:
    return Snapshot(read(netns))


def delta(before: dict[str, int], after: dict[str, int], nonzero: bool = True) -> dict[str, int]:
    """after - before per counter (counters new in AFTER count from 0); only changes by default."""
    out = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in out.items() if v} if nonzero else out
