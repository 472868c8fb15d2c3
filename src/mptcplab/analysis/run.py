"""``analyze(paths)``: stream one or more captures through the tracker.

Several captures of one test (one per interface) are merged by timestamp. A packet
seen by two captures (sent on one interface and received on the other end of the
same link) is counted once: its TCP header without the checksum (which the sending
side may leave unfinished under offload), addresses and payload length form the
identity, remembered for ``dedup_window`` seconds. Repeats inside one capture are
real retransmissions and are kept.
"""

from __future__ import annotations

import heapq
import os
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from mptcplab.analysis.decode import SUPPORTED_LINKTYPES, decode
from mptcplab.analysis.model import AnalysisResult
from mptcplab.analysis.reader import iter_file
from mptcplab.analysis.tracker import Tracker

MAX_WARNINGS = 1000


def analyze(paths: Iterable[str | os.PathLike], *, series: bool = False,
            dedup_window: float = 1.0) -> AnalysisResult:
    """Analyse captures and return connections, subflows, events and warnings.

    ``series=True`` also keeps one small tuple per data packet for the sequence and
    throughput plots (memory then grows with the capture).
    """
    paths = [os.fspath(p) for p in paths]
    warnings: list[dict[str, Any]] = []
    dropped = [0]

    def warn(where: tuple[int, int], msg: str) -> None:
        if len(warnings) < MAX_WARNINGS:
            warnings.append({"file": where[0], "path": paths[where[0]],
                             "packet": where[1], "message": msg})
        else:
            dropped[0] += 1

    tracker = Tracker(warn, series=series)
    infos: list[dict[str, Any]] = [{} for _ in paths]
    counts = [0] * len(paths)
    streams = [iter_file(p, _file_warn(i, warn), infos[i], tag=i) for i, p in enumerate(paths)]
    if len(streams) == 1:
        merged: Iterator[tuple] = streams[0]
    else:
        merged = heapq.merge(*streams, key=lambda r: r[0])
    dedup = len(paths) > 1
    seen: dict[bytes, tuple[float, int]] = {}
    order: deque[tuple[float, bytes]] = deque()
    duplicates = 0
    tcp_packets = 0
    tcp = tracker.tcp
    bad_links: set[tuple[int, int]] = set()
    for ts, linktype, data, pktno, fidx in merged:
        counts[fidx] += 1
        try:
            dec = decode(linktype, data)
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not stop the analysis
            warn((fidx, pktno), f"cannot decode: {exc!r}")
            continue
        if dec is None:
            if linktype not in SUPPORTED_LINKTYPES and (fidx, linktype) not in bad_links:
                bad_links.add((fidx, linktype))
                warn((fidx, pktno), f"unsupported link type {linktype}")
            continue
        if dec.__class__ is str:
            warn((fidx, pktno), dec)
            continue
        src, dst, toff, plen = dec
        if dedup:
            thl = (data[toff + 12] >> 4) * 4
            ident = b"%b%b%b%b%d" % (src, dst, data[toff:toff + 16], data[toff + 18:toff + thl], plen)
            prev = seen.get(ident)
            while order and ts - order[0][0] > dedup_window:
                old_ts, old = order.popleft()
                if seen.get(old, (None,))[0] == old_ts:
                    del seen[old]
            if prev is not None and prev[1] != fidx and ts - prev[0] <= dedup_window:
                duplicates += 1
                continue
            seen[ident] = (ts, fidx)
            order.append((ts, ident))
        tcp_packets += 1
        try:
            tcp(ts, data, src, dst, toff, plen, (fidx, pktno))
        except Exception as exc:  # noqa: BLE001 - one odd packet must not stop the analysis
            warn((fidx, pktno), f"cannot analyse: {exc!r}")
    if dropped[0]:
        warnings.append({"file": None, "path": None, "packet": None,
                         "message": f"{dropped[0]} more warnings not listed"})
    inputs = [{"path": p, "format": infos[i].get("format"), "packets": counts[i],
               "linktypes": sorted(SUPPORTED_LINKTYPES.get(lt, str(lt))
                                   for lt in infos[i].get("linktypes", ()))}
              for i, p in enumerate(paths)]
    return AnalysisResult(inputs, tracker.streams, tracker.connections, warnings,
                          sum(counts), tcp_packets, duplicates)


def _file_warn(fidx: int, warn):
    """The reader's warn(pktno, msg) for file FIDX."""

    def file_warn(pktno: int, msg: str) -> None:
        warn((fidx, pktno), msg)

    return file_warn
