"""What Wireshark's MPTCP dissector says about a capture, in the shape our tests compare.

tshark runs with the two MPTCP analysis preferences on, one line per frame.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter

from mptcplab.analysis import AnalysisResult
from mptcplab.analysis.options import SUBTYPES

FIELDS = ["frame.number", "tcp.stream", "tcp.len", "mptcp.stream",
          "tcp.options.mptcp.subtype", "mptcp.reinjection_of"]
HANDSHAKE_FALLBACK = "SYN/ACK without MP_CAPABLE"
TSHARK_OPTS = ["-o", "mptcp.analyze_mappings:TRUE", "-o", "mptcp.intersubflows_retransmission:TRUE"]


def available() -> bool:
    return shutil.which("tshark") is not None


def tshark_fields(path: str, fields: list[str]) -> list[list[str]]:
    argv = ["tshark", "-n", "-r", path, *TSHARK_OPTS, "-T", "fields", "-E", "separator=\t"]
    for f in fields:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def reference(path: str) -> dict:
    """Option counts, MPTCP connection -> TCP streams, per-stream packets/bytes, reinjections."""
    counts: Counter[str] = Counter()
    streams: dict[int, list[int]] = {}
    mptcp: dict[int, set[int]] = {}
    reinjections: set[int] = set()
    for frame, stream, tlen, mstream, subtypes, reinj in tshark_fields(path, FIELDS):
        if not stream:
            continue
        s = int(stream)
        entry = streams.setdefault(s, [0, 0])
        entry[0] += 1
        entry[1] += int(tlen or 0)
        if mstream:
            mptcp.setdefault(int(mstream), set()).add(s)
        for sub in filter(None, subtypes.split(",")):
            counts[SUBTYPES.get(int(sub), sub)] += 1
        if reinj:
            reinjections.add(int(frame))
    return {"counts": dict(counts), "streams": streams, "mptcp": mptcp,
            "reinjections": reinjections}


def ours(result: AnalysisResult) -> dict:
    """The same facts from our analysis of one capture."""
    return {
        "counts": dict(result.option_counts),
        "streams": {s.index: [sum(s.packets), sum(s.payload)] for s in result.streams},
        # Wireshark gives no mptcp.stream to a connection whose SYN/ACK refused MPTCP
        "mptcp": {c.index: {s.index for s in c.subflows} for c in result.connections
                  if not (c.fallback and c.fallback["reason"] == HANDSHAKE_FALLBACK)},
        "reinjections": {r["packet"] for c in result.connections for r in c.reinjections},
    }
