"""Plots of an analysis: the MPTCP sequence graph and per-subflow throughput.

Both need ``analyze(..., series=True)``. matplotlib is imported here only, with the
Agg backend, so analysis without plots never pays for it. The format follows the
file suffix (.png or .svg).
"""

from __future__ import annotations

import os

from mptcplab.analysis.model import DIRS, MptcpConnection


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def sequence_graph(conn: MptcpConnection, path: str | os.PathLike, direction: int = 0) -> None:
    """Relative data sequence number over time, one colour per subflow, reinjections marked."""
    if conn.series is None:
        raise ValueError("analyze(..., series=True) is needed for plots")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    t0 = conn.start
    for sub in range(len(conn.subflows)):
        pts = [(ts - t0, dsn) for ts, sf, d, _n, dsn, _r in conn.series if sf == sub and d == direction]
        if pts:
            st = conn.subflows[sub]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=4,
                       label=f"subflow {sub} ({st.endpoint(0)} > {st.endpoint(1)})")
    re = [(ts - t0, dsn) for ts, _sf, d, _n, dsn, r in conn.series if r and d == direction]
    if re:
        ax.scatter([p[0] for p in re], [p[1] for p in re], s=30, marker="x", color="black",
                   label="reinjection")
    ax.set_xlabel("time since connection start (s)")
    ax.set_ylabel("data sequence number (relative to IDSN)")
    ax.set_title(f"MPTCP connection {conn.index}, {DIRS[direction]}")
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(os.fspath(path))
    plt.close(fig)


def throughput(conn: MptcpConnection, path: str | os.PathLike, direction: int = 0,
               bin_s: float = 0.1) -> None:
    """Payload rate per subflow (Mbit/s) in bins of ``bin_s`` seconds, stacked lines."""
    if conn.series is None:
        raise ValueError("analyze(..., series=True) is needed for plots")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    t0 = conn.start
    nbins = int((conn.end - t0) / bin_s) + 1
    for sub in range(len(conn.subflows)):
        bins = [0] * nbins
        for ts, sf, d, n, _dsn, _r in conn.series:
            if sf == sub and d == direction:
                bins[min(int((ts - t0) / bin_s), nbins - 1)] += n
        if any(bins):
            ax.plot([i * bin_s for i in range(nbins)], [b * 8 / bin_s / 1e6 for b in bins],
                    label=f"subflow {sub}", drawstyle="steps-post")
    ax.set_xlabel("time since connection start (s)")
    ax.set_ylabel("Mbit/s")
    ax.set_title(f"MPTCP connection {conn.index}, {DIRS[direction]}, per-subflow throughput")
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(os.fspath(path))
    plt.close(fig)
