"""Generated topologies: a chain of routers with a host at each end (tests, benchmarks, scale experiments)."""

from __future__ import annotations


def chain(n: int, name: str | None = None) -> str:
    """TOML of N nodes in a line: h0, r1 ... r(N-2), h(N-1); links between neighbours.

    Links get subnets from the automatic pool (10.0.1.0/24, 10.0.2.0/24, ...).
    """
    if n < 2:
        raise ValueError("a chain needs at least two nodes")
    names = [f"h{0}"] + [f"r{i}" for i in range(1, n - 1)] + [f"h{n - 1}"]
    lines = [f'name = "{name}"'] if name else []
    for node in names:
        lines.append(f"[nodes.{node}]")
        if node.startswith("r"):
            lines.append('kind = "router"')
    for left, right in zip(names, names[1:], strict=False):
        lines += ["[[links]]", f'endpoints = ["{left}:{"eth0" if left.startswith("h") else "eth1"}", "{right}:eth0"]']
    return "\n".join(lines) + "\n"
