"""The analysis model: TCP streams, MPTCP connections, events, and their JSON form.

The tracker fills these objects while it streams the capture; scripts read the same
objects (``result.connections[0].subflows[1].backup``) or the JSON document from
``to_dict()``, whose layout is versioned by ``SCHEMA_VERSION`` (bump it on any
incompatible change; adding keys is compatible).
"""

from __future__ import annotations

import json
from typing import Any

from mptcplab.analysis.decode import addr_str
from mptcplab.analysis.intervals import Coverage, OwnerMap
from mptcplab.analysis.options import SUBTYPES, key_token

SCHEMA = "mptcplab.analysis"
SCHEMA_VERSION = 1
DIRS = ("c2s", "s2c")


def count_names(counts: list[int]) -> dict[str, int]:
    """Subtype-indexed counts as {name: count}, zeros left out, in subtype order."""
    return {SUBTYPES.get(i, f"subtype_{i}"): n for i, n in enumerate(counts) if n}


def _r(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(x, nd)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 6)


class TcpStream:
    """One TCP connection (a subflow when it carries MPTCP). Direction 0 is the SYN sender's."""

    __slots__ = (
        "index", "addrs", "ports", "first", "first_ts", "last_ts",
        "packets", "payload", "retrans", "isn", "high", "syn_ts", "synack_ts", "ack_ts",
        "fin_ts", "rst_ts", "conn", "flip", "kind", "join", "backup", "addr_id",
        "maps", "checked_ack", "optcnt", "sub",
    )

    def __init__(self, index: int, addrs: tuple[bytes, bytes], ports: tuple[int, int],
                 ts: float, where: tuple[int, int]) -> None:
        self.index = index
        self.addrs = addrs  # (initiator, responder)
        self.ports = ports
        self.first = where  # (input file index, packet number)
        self.first_ts = ts
        self.last_ts = ts
        self.packets = [0, 0]
        self.payload = [0, 0]
        self.retrans = [0, 0]
        self.isn: list[int | None] = [None, None]
        self.high = [0, 0]  # highest relative sequence end sent
        self.syn_ts: float | None = None
        self.synack_ts: float | None = None
        self.ack_ts: float | None = None
        self.fin_ts: list[float | None] = [None, None]
        self.rst_ts: list[float | None] = [None, None]
        self.conn: MptcpConnection | None = None
        self.flip = 0  # stream direction d is connection direction d ^ flip
        self.kind = "tcp"  # tcp | initial | join
        self.join: dict[str, Any] | None = None
        self.backup = [None, None]  # per stream direction: sender asked for backup
        self.addr_id = [None, None]  # address id of each stream direction's sender
        self.maps: list[list[tuple[int, int, int]]] = [[], []]  # (ssn, end, dsn) recent
        self.checked_ack = False
        self.optcnt = [0] * 16  # MPTCP options seen on this stream, by subtype
        self.sub = -1  # index among its connection's subflows

    @property
    def options(self) -> dict[str, int]:
        """MPTCP option counts of this stream by subtype name."""
        return count_names(self.optcnt)

    @property
    def closed(self) -> bool:
        return (self.fin_ts[0] is not None and self.fin_ts[1] is not None) or (
            self.rst_ts[0] is not None or self.rst_ts[1] is not None)

    def endpoint(self, d: int) -> str:
        a = addr_str(self.addrs[d])
        return f"[{a}]:{self.ports[d]}" if ":" in a else f"{a}:{self.ports[d]}"

    def _dir(self, d: int) -> dict[str, Any]:
        return {"packets": self.packets[d], "payload_bytes": self.payload[d],
                "retransmitted_packets": self.retrans[d]}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tcp_stream": self.index,
            "src": addr_str(self.addrs[0]), "sport": self.ports[0],
            "dst": addr_str(self.addrs[1]), "dport": self.ports[1],
            "first_packet": {"file": self.first[0], "packet": self.first[1]},
            "start": _r(self.first_ts), "end": _r(self.last_ts),
            "duration": _diff(self.first_ts, self.last_ts),
            "handshake": {
                "syn_to_synack": _diff(self.syn_ts, self.synack_ts),
                "syn_to_ack": _diff(self.syn_ts, self.ack_ts),
            },
            "closed_by": "rst" if self.rst_ts[0] or self.rst_ts[1] else (
                "fin" if self.fin_ts[0] and self.fin_ts[1] else None),
        }
        if self.conn is None:
            out["fwd"] = self._dir(0)
            out["rev"] = self._dir(1)
        else:
            out["kind"] = self.kind
            # directions named after the MPTCP connection: c2s = from the connection's client
            out["c2s"] = self._dir(self.flip)
            out["s2c"] = self._dir(1 ^ self.flip)
            out["initiated_by"] = "client" if self.flip == 0 else "server"
            out["client_addr_id"] = self.addr_id[self.flip]
            out["server_addr_id"] = self.addr_id[1 ^ self.flip]
            out["backup"] = {"client": self.backup[self.flip], "server": self.backup[1 ^ self.flip]}
            if self.join is not None:
                out["join"] = self.join
            out["options"] = self.options
        return out


class MptcpConnection:
    """One MPTCP connection: keys, subflows, events, data-level accounting. Direction 0 = c2s."""

    __slots__ = (
        "index", "version", "flags", "keys", "key_mismatch", "subflows", "events",
        "fallback", "last_dsn", "data_ack", "coverage", "owners", "mappings",
        "mapped_bytes", "unmapped", "reinjected_bytes", "reinjected_packets", "reinjections",
        "data_fin", "series", "closed", "fastclose", "idsn", "partial_token",
    )

    MAX_LISTED_REINJECTIONS = 1000

    def __init__(self, index: int) -> None:
        self.index = index
        self.version: int | None = None
        self.flags = 0
        self.keys: list[int | None] = [None, None]
        self.idsn: list[int | None] = [None, None]  # cached key_idsn(keys[d])
        self.key_mismatch = False
        self.subflows: list[TcpStream] = []
        self.events: list[dict[str, Any]] = []
        self.fallback: dict[str, Any] | None = None
        self.last_dsn: list[int | None] = [None, None]
        self.data_ack: list[int | None] = [None, None]
        self.coverage = [Coverage(), Coverage()]
        self.owners: list[OwnerMap] | None = [OwnerMap(), OwnerMap()]
        self.mappings = [0, 0]
        self.mapped_bytes = [0, 0]
        self.unmapped = [0, 0]
        self.reinjected_bytes = [0, 0]
        self.reinjected_packets = [0, 0]
        self.reinjections: list[dict[str, Any]] = []
        self.data_fin: list[float | None] = [None, None]
        self.series: list[tuple] | None = None
        self.closed = False
        self.fastclose = False
        self.partial_token: int | None = None  # set when only joins were captured

    @property
    def tokens(self) -> list[int | None]:
        return [None if k is None else key_token(k) for k in self.keys]

    @property
    def idsns(self) -> list[int | None]:
        return list(self.idsn)

    @property
    def start(self) -> float:
        return self.subflows[0].first_ts

    @property
    def end(self) -> float:
        return max(s.last_ts for s in self.subflows)

    def _data(self, d: int) -> dict[str, Any]:
        cov = self.coverage[d]
        idsn = self.idsns[d]
        holes = cov.holes()
        return {
            "mappings": self.mappings[d],
            "mapped_bytes": self.mapped_bytes[d],
            "coverage": {
                "first_dsn": cov.first, "last_dsn": cov.last,
                "covered_bytes": cov.total, "holes": len(holes),
                "hole_bytes": sum(b - a for a, b in holes),
                "first_relative": None if idsn is None or cov.first is None
                else (cov.first - idsn) % (1 << 64),
            },
            "payload_packets_without_mapping": self.unmapped[d],
            "reinjected_packets": self.reinjected_packets[d],
            "reinjected_bytes": self.reinjected_bytes[d],
            "last_data_ack": self.data_ack[d],
            "data_fin_time": _r(self.data_fin[d]),
        }

    def to_dict(self) -> dict[str, Any]:
        toks = self.tokens
        idsns = self.idsns
        first = self.subflows[0]
        return {
            "id": self.index,
            "version": self.version,
            "checksum_required": bool(self.flags & 0x80),
            "client": first.endpoint(first.flip),
            "server": first.endpoint(1 ^ first.flip),
            "client_key": None if self.keys[0] is None else f"{self.keys[0]:016x}",
            "server_key": None if self.keys[1] is None else f"{self.keys[1]:016x}",
            "client_token": None if toks[0] is None else f"{toks[0]:08x}",
            "server_token": None if toks[1] is None else f"{toks[1]:08x}",
            "client_idsn": idsns[0],
            "server_idsn": idsns[1],
            "key_mismatch": self.key_mismatch,
            "initial_subflow_captured": self.partial_token is None,
            "join_token": None if self.partial_token is None else f"{self.partial_token:08x}",
            "fallback": self.fallback,
            "start": _r(self.start), "end": _r(self.end),
            "duration": _diff(self.start, self.end),
            "tcp_streams": [s.index for s in self.subflows],
            "subflows": [dict(s.to_dict(), id=i) for i, s in enumerate(self.subflows)],
            "events": self.events,
            "data": {DIRS[d]: self._data(d) for d in (0, 1)},
            "reinjections": self.reinjections,
            "options": self.options,
        }

    @property
    def options(self) -> dict[str, int]:
        """MPTCP option counts over all subflows by subtype name."""
        return count_names([sum(col) for col in zip(*(s.optcnt for s in self.subflows), strict=True)])


class AnalysisResult:
    """Everything ``analyze()`` found. ``to_dict()``/``to_json()`` give the versioned schema."""

    def __init__(self, inputs: list[dict[str, Any]], streams: list[TcpStream],
                 connections: list[MptcpConnection], warnings: list[dict[str, Any]],
                 packets: int, tcp_packets: int, duplicates: int) -> None:
        self.inputs = inputs
        self.streams = streams
        self.connections = connections
        self.warnings = warnings
        self.option_counts = count_names(
            [sum(col) for col in zip(*(s.optcnt for s in streams), strict=True)] if streams else [])
        self.packets = packets
        self.tcp_packets = tcp_packets
        self.duplicates = duplicates

    @property
    def tcp_connections(self) -> list[TcpStream]:
        """TCP streams that are not part of any MPTCP connection."""
        return [s for s in self.streams if s.conn is None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "inputs": self.inputs,
            "packets": self.packets,
            "tcp_packets": self.tcp_packets,
            "duplicates_removed": self.duplicates,
            "option_counts": self.option_counts,
            "mptcp_connections": [c.to_dict() for c in self.connections],
            "tcp_connections": [s.to_dict() for s in self.tcp_connections],
            "warnings": self.warnings,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)
