"""From raw samples to the perf result: per-subflow time series, intervals, totals.

The JSON document (schema "mptcplab.perf", version SCHEMA_VERSION):
  meta       tool version, host, kernel, parameters, start time
  streams    per data connection: direction, who sent, the sender's and the receiver's
             bytes and CRC-32, the check, token, and per subflow its time series
             (t, bytes_sent, bytes_acked, snd_cwnd, rtt_us, rttvar_us, total_retrans),
             totals and the path-manager event times (created/closed)
  intervals  per report interval and stream: bytes, bit/s, and one entry per subflow
  totals     per direction: bytes, seconds, bit/s (sender and receiver views)
  server     what the server received and sent (its own account)
  counters   MPTcpExt deltas of the client's and the server's namespace
  events     path-manager events of each side's connections
  schedule   scheduled subflow actions and their outcome
  check      ok + problems (byte counts and CRC-32 compared end to end)
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

SCHEMA = "mptcplab.perf"
SCHEMA_VERSION = 1
SERIES_FIELDS = ("bytes_sent", "bytes_acked", "snd_cwnd", "rtt_us", "rttvar_us", "total_retrans")


def build_series(samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Group samples by stream, then by subflow (keyed by its 4-tuple), in time order."""
    streams: dict[str, dict[str, Any]] = {}
    for s in sorted(samples, key=lambda s: s["t"]):
        st = streams.setdefault(s["stream"], {"t": [], "bytes": [], "token": s.get("token"),
                                              "source": s.get("source"), "subflows": {}})
        st["t"].append(s["t"])
        st["bytes"].append(s["bytes"])
        if s.get("token"):
            st["token"] = s["token"]
        for sf in s["subflows"]:
            key = f"{_ep(sf['local'])}>{_ep(sf['remote'])}"
            entry = st["subflows"].setdefault(key, {
                "id": sf["id"], "local": list(sf["local"]), "remote": list(sf["remote"]),
                "t": [], **{f: [] for f in SERIES_FIELDS}, "state": [],
            })
            entry["t"].append(s["t"])
            entry["state"].append(sf["state"])
            for f in SERIES_FIELDS:
                entry[f].append(sf[f])
    return streams


def _unmap(addr: str | None) -> str | None:
    if addr and addr.startswith("::ffff:") and "." in addr:
        return addr[7:]
    return addr


def _ep(ep: list[Any] | tuple[Any, ...]) -> str:
    addr, port = ep[0], ep[1]
    return f"[{addr}]:{port}" if ":" in str(addr) else f"{addr}:{port}"


def _at(ts: list[float], values: list[int], t: float, before_first: int = 0) -> tuple[float, int]:
    """(time, value) of the last sample at or before T; (0, BEFORE_FIRST) if none."""
    i = bisect.bisect_right(ts, t + 1e-9) - 1
    if i < 0:
        return 0.0, before_first
    return ts[i], values[i]


def intervals(series: dict[str, dict[str, Any]], interval: float, end: float | None = None,
              first: int = 0) -> list[dict[str, Any]]:
    """Report intervals of INTERVAL seconds (from number FIRST on) over all streams' series.

    The last interval stretches to the last sample when that is less than half an
    interval beyond the last boundary (the drain after a timed run).
    """
    if end is None:
        end = max((st["t"][-1] for st in series.values() if st["t"]), default=0.0)
    count = max(1, math.floor(end / interval + 0.5)) if end > 0 else 0
    out = []
    for k in range(first, count):
        b0 = k * interval
        b1 = end if k == count - 1 else (k + 1) * interval
        entry: dict[str, Any] = {"start": round(b0, 3), "end": round(b1, 3), "streams": []}
        total = 0
        for key, st in sorted(series.items()):
            t0, v0 = _at(st["t"], st["bytes"], b0)
            t1, v1 = _at(st["t"], st["bytes"], b1)
            if t1 <= b0 and k > 0:
                continue  # the stream had ended
            secs = max(t1 - t0, 1e-9) if t1 > t0 else (b1 - b0)
            sflist = []
            for sfkey, sf in st["subflows"].items():
                if not any(b0 < t <= b1 + 1e-9 for t in sf["t"]):
                    continue
                _, a0 = _at(sf["t"], sf["bytes_acked"], b0)
                s1t, a1 = _at(sf["t"], sf["bytes_acked"], b1)
                _, r0 = _at(sf["t"], sf["total_retrans"], b0)
                _, r1 = _at(sf["t"], sf["total_retrans"], b1)
                _, sent0 = _at(sf["t"], sf["bytes_sent"], b0)
                _, sent1 = _at(sf["t"], sf["bytes_sent"], b1)
                i = sf["t"].index(s1t) if s1t in sf["t"] else -1
                sflist.append({
                    "key": sfkey, "id": sf["id"], "local": sf["local"], "remote": sf["remote"],
                    "bytes": a1 - a0, "bytes_sent": sent1 - sent0,
                    "bits_per_second": (a1 - a0) * 8 / secs,
                    "snd_cwnd": sf["snd_cwnd"][i], "rtt_us": sf["rtt_us"][i],
                    "retransmits": r1 - r0,
                })
            sflist.sort(key=lambda s: s["id"])
            total += v1 - v0
            entry["streams"].append({"stream": key, "bytes": v1 - v0,
                                     "bits_per_second": (v1 - v0) * 8 / secs, "subflows": sflist})
        entry["sum"] = {"bytes": total, "bits_per_second": total * 8 / max(b1 - b0, 1e-9)}
        out.append(entry)
    return out


def subflow_summaries(st: dict[str, Any], events: list[dict[str, Any]], t0_wall: float) -> list[dict[str, Any]]:
    """Per subflow of one stream: final figures, when it was seen, and its PM events."""
    out = []
    for key, sf in st["subflows"].items():
        summary = {
            "key": key, "id": sf["id"], "local": sf["local"], "remote": sf["remote"],
            "first_seen": sf["t"][0], "last_seen": sf["t"][-1], "last_state": sf["state"][-1],
            **{f: sf[f][-1] for f in ("bytes_sent", "bytes_acked", "total_retrans")},
            "created": None, "closed": None,
            "series": {"t": sf["t"], **{f: sf[f] for f in SERIES_FIELDS}},
        }
        laddr, lport = sf["local"]
        raddr, rport = sf["remote"]
        for ev in events:
            if ev.get("token") != st.get("token"):
                continue
            rel = round(ev["time"] - t0_wall, 6)
            if ev["kind"] == "closed":  # the connection: closes whatever subflow was left
                summary["closed"] = summary["closed"] if summary["closed"] is not None else rel
                continue
            ends = {(_unmap(ev.get("saddr")), ev.get("sport")), (_unmap(ev.get("daddr")), ev.get("dport"))}
            if ends != {(laddr, lport), (raddr, rport)}:
                continue
            if ev["kind"] in ("sf_established", "established", "created") and summary["created"] is None:
                summary["created"] = rel
            elif ev["kind"] == "sf_closed":
                summary["closed"] = rel
        out.append(summary)
    out.sort(key=lambda s: (s["id"], s["first_seen"]))
    return out


@dataclass
class PerfResult:
    """A finished perf run: the JSON document plus a few accessors for scenario code."""

    data: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.data["check"]["ok"])

    @property
    def problems(self) -> list[str]:
        return list(self.data["check"]["problems"])

    @property
    def streams(self) -> list[dict[str, Any]]:
        return self.data["streams"]

    def stream(self, key: str) -> dict[str, Any]:
        for s in self.streams:
            if s["key"] == key:
                return s
        raise KeyError(key)

    def subflows(self, direction: str | None = None) -> list[dict[str, Any]]:
        """Every subflow of every stream (optionally of one direction, 'c2s' or 's2c')."""
        return [sf for s in self.streams if direction in (None, s["direction"]) for sf in s["subflows"]]

    def bits_per_second(self, direction: str = "c2s") -> float:
        return float(self.data["totals"].get(direction, {}).get("bits_per_second", 0.0))

    def to_dict(self) -> dict[str, Any]:
        return self.data
