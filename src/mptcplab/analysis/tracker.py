"""Connection tracking: TCP streams, MPTCP connections, subflows, mappings, events.

``Tracker.tcp()`` is called once per TCP segment in capture order. It keeps per
stream only counters and the last few DSS mappings, and per connection the interval
sets of ``intervals.py``; the packets themselves are never stored (unless a caller
asks for the plot series), so memory follows live connections, not capture length.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from mptcplab.analysis.decode import addr_str
from mptcplab.analysis.model import DIRS, MptcpConnection, TcpStream
from mptcplab.analysis.options import (
    SUBTYPES,
    TCPRST_REASONS,
    key_idsn,
    key_token,
    parse_mptcp,
)

Where = tuple[int, int]  # (input file index, packet number)

_TCP = struct.Struct("!HHIIH").unpack_from
M32 = 0xFFFFFFFF
M64 = (1 << 64) - 1
SYN, ACK, FIN, RST = 0x02, 0x10, 0x01, 0x04
_NAMES = [SUBTYPES.get(i, f"subtype_{i}") for i in range(16)]


def _layout(f: int) -> tuple[int, Callable | None, bool, bool]:
    """DSS layout for flag bits f (A 0x01, a 0x02, M 0x04, m 0x08): length without
    checksum, field unpacker, has data ack, has mapping."""
    fmt = "!"
    base = 4
    if f & 0x01:
        fmt += "Q" if f & 0x02 else "I"
        base += 8 if f & 0x02 else 4
    if f & 0x04:
        fmt += ("Q" if f & 0x08 else "I") + "IH"
        base += (8 if f & 0x08 else 4) + 6
    return base, (struct.Struct(fmt).unpack_from if len(fmt) > 1 else None), bool(f & 1), bool(f & 4)


_DSS_LAYOUT = [_layout(f) for f in range(16)]


def widen(last: int, low32: int) -> int:
    """The 64-bit value whose low 32 bits are ``low32`` nearest to ``last``."""
    cand = (last & ~M32) | low32
    if cand < last - (1 << 31):
        cand += 1 << 32
    elif cand > last + (1 << 31):
        cand -= 1 << 32
    return cand & M64


class Tracker:
    """Feeds on decoded TCP segments; ``streams`` and ``connections`` are the result."""

    def __init__(self, warn: Callable[[Where, str], None], series: bool = False) -> None:
        self.warn = warn
        self.series = series
        self.flows: dict[bytes, tuple[TcpStream, int]] = {}
        self.streams: list[TcpStream] = []
        self.connections: list[MptcpConnection] = []
        self.tokens: dict[int, MptcpConnection] = {}

    # -- streams -----------------------------------------------------------------
    def _new_stream(self, key: bytes, src: bytes, dst: bytes, sport: int, dport: int,
                    flags: int, ts: float, where: Where) -> tuple[TcpStream, int]:
        rkey = dst + src + struct.pack("!HH", dport, sport)
        if flags & SYN and flags & ACK:  # first seen packet is the SYN/ACK: receiver initiated
            st = TcpStream(len(self.streams), (dst, src), (dport, sport), ts, where)
            ent, rent = (st, 1), (st, 0)
        else:
            st = TcpStream(len(self.streams), (src, dst), (sport, dport), ts, where)
            ent, rent = (st, 0), (st, 1)
        self.streams.append(st)
        self.flows[key] = ent
        self.flows[rkey] = rent
        return ent

    def tcp(self, ts: float, data: bytes, src: bytes, dst: bytes, toff: int, plen: int,
            where: Where) -> None:
        """Account one TCP segment (``data[toff:]`` is its header)."""
        sport, dport, seq, ack, offflags = _TCP(data, toff)
        flags = offflags & 0x1FF
        key = src + dst + data[toff:toff + 4]
        ent = self.flows.get(key)
        if ent is None:
            ent = self._new_stream(key, src, dst, sport, dport, flags, ts, where)
        elif flags & SYN and not flags & ACK:
            st = ent[0]
            if ent[1] == 0 and st.isn[0] is not None and st.isn[0] != seq and (
                    st.closed or st.synack_ts is not None):
                ent = self._new_stream(key, src, dst, sport, dport, flags, ts, where)
        st, d = ent
        st.packets[d] += 1
        st.payload[d] += plen
        st.last_ts = ts
        if flags & (SYN | FIN | RST):
            self._control(st, d, flags, seq, ts)
        elif st.ack_ts is None and d == 0 and st.synack_ts is not None:
            st.ack_ts = ts
        isn = st.isn[d]
        rel = -1
        if isn is not None:
            rel = (seq - isn) & M32
            if plen:
                end = rel + plen
                if end <= st.high[d] and st.high[d] - end < (1 << 30):
                    st.retrans[d] += 1
                else:
                    st.high[d] = end
        thl = (offflags >> 12) * 4
        dss = False
        mpc = False
        if thl > 20:
            opts = data[toff + 20:toff + thl]
            if 30 in opts:
                dss, mpc = self._options(st, d, flags, opts, ts, where)
        conn = st.conn
        if conn is None:
            return
        if not mpc and flags & SYN and flags & ACK and st.kind == "initial" and conn.fallback is None:
            self._fallback(conn, "SYN/ACK without MP_CAPABLE", ts, where)
        elif (not st.checked_ack and d == 0 and st.synack_ts is not None and not flags & SYN
              and st.kind == "initial"):
            st.checked_ack = True
            if not mpc and conn.fallback is None:
                self._fallback(conn, "third ACK without MP_CAPABLE", ts, where)
        if plen and rel >= 0 and conn.fallback is None:
            self._payload(conn, st, d, rel, plen, dss, mpc, ts, where)

    def _control(self, st: TcpStream, d: int, flags: int, seq: int, ts: float) -> None:
        if flags & SYN:
            st.isn[d] = seq
            if flags & ACK:
                if st.synack_ts is None:
                    st.synack_ts = ts
            elif st.syn_ts is None:
                st.syn_ts = ts
            st.high[d] = 1
        if flags & FIN and st.fin_ts[d] is None:
            st.fin_ts[d] = ts
        if flags & RST and st.rst_ts[d] is None:
            st.rst_ts[d] = ts
        if st.conn is not None and st.closed:
            st.maps = [[], []]
            conn = st.conn
            if not conn.closed and all(s.closed for s in conn.subflows):
                conn.closed = True
                conn.owners = None  # nothing more can be reinjected

    # -- MPTCP options -------------------------------------------------------------
    def _options(self, st: TcpStream, d: int, flags: int, opts: bytes, ts: float,
                 where: tuple[int, int]) -> tuple[bool, bool]:
        """Walk the TCP options; DSS is decoded inline (it is on nearly every packet)."""
        dss = False
        mpc = False
        cnt = st.optcnt
        i = 0
        n = len(opts)
        while i < n:
            k = opts[i]
            if k == 1:
                i += 1
                continue
            if k == 0:
                break
            if i + 1 >= n:
                self.warn(where, f"TCP option kind {k} without length")
                break
            ln = opts[i + 1]
            if ln < 2 or i + ln > n:
                self.warn(where, f"TCP option kind {k} has bad length {ln}")
                break
            if k != 30:
                i += ln
                continue
            if ln < 3:
                self.warn(where, f"MPTCP option length {ln} < 3")
                i += ln
                continue
            sub = opts[i + 2] >> 4
            cnt[sub] += 1
            if sub == 2 and ln >= 4:
                dflags = opts[i + 3]
                base, unpack, has_ack, has_map = _DSS_LAYOUT[dflags & 0x0F]
                if ln == base or (has_map and ln == base + 2):
                    dss = True
                    if st.conn is not None:
                        vals = unpack(opts, i + 4) if unpack is not None else ()
                        self._dss(st, d, dflags, vals[0] if has_ack else None,
                                  vals[-3] if has_map else None, vals[-2] if has_map else 0,
                                  vals[-1] if has_map else 0, ts, where)
                    i += ln
                    continue
            opt = parse_mptcp(opts[i:i + ln])
            i += ln
            if isinstance(opt, str):
                self.warn(where, opt)
                continue
            if sub == 0:
                mpc = True
                self._mp_capable(st, d, flags, opt, ts, where)
            elif sub == 1:
                self._mp_join(st, d, flags, opt, ts, where)
            else:
                self._event(st, d, opt, ts, where)
        return dss, mpc

    def _mp_capable(self, st: TcpStream, d: int, flags: int, opt: tuple, ts: float,
                    where: Where) -> None:
        _, version, oflags, key_a, key_b, _dlen = opt
        conn = st.conn
        if conn is None:
            if st.kind != "tcp":
                return
            conn = MptcpConnection(len(self.connections))
            self.connections.append(conn)
            conn.version = version
            conn.flags = oflags
            st.conn = conn
            st.kind = "initial"
            # connection client = the SYN sender; a SYN/ACK seen first still names it
            st.flip = 0
            st.sub = 0
            st.addr_id = [0, 0]  # the initial subflow's addresses have id 0
            conn.subflows.append(st)
            if conn.series is None and self.series:
                conn.series = []
        if st.kind != "initial":
            return
        if flags & SYN and flags & ACK:
            conn.flags = oflags if conn.flags == 0 else conn.flags
        cd = d ^ st.flip
        if key_a is not None:
            self._set_key(conn, cd, key_a, where)
        if key_b is not None:
            self._set_key(conn, 1 - cd, key_b, where)

    def _set_key(self, conn: MptcpConnection, cd: int, key: int, where: Where) -> None:
        old = conn.keys[cd]
        if old == key:
            return
        if old is not None:
            conn.key_mismatch = True
            self.warn(where, f"MPTCP connection {conn.index}: {DIRS[cd][0]} key changed "
                             f"from {old:016x} to {key:016x}")
            return
        conn.keys[cd] = key
        conn.idsn[cd] = key_idsn(key)
        self.tokens[key_token(key)] = conn
        if conn.last_dsn[cd] is None:
            conn.last_dsn[cd] = conn.idsn[cd]

    def _mp_join(self, st: TcpStream, d: int, flags: int, opt: tuple, ts: float,
                 where: Where) -> None:
        _, length, backup, addr_id, token, _nonce = opt
        if length == 12 and flags & SYN and not flags & ACK:
            if st.conn is not None:
                return
            conn = self.tokens.get(token)
            st.join = {"token": f"{token:08x}", "join_delay": None}
            st.backup[d] = bool(backup)
            st.addr_id[d] = addr_id
            if conn is None:
                # the initial subflow was not captured: group joins by their token
                self.warn(where, f"MP_JOIN SYN with token {token:08x} of no captured MP_CAPABLE "
                                 "handshake")
                conn = MptcpConnection(len(self.connections))
                conn.partial_token = token
                if self.series:
                    conn.series = []
                self.connections.append(conn)
                self.tokens[token] = conn
            st.kind = "join"
            st.conn = conn
            st.flip = 0 if conn.partial_token == token or (
                conn.keys[1] is not None and key_token(conn.keys[1]) == token) else 1
            st.join["join_delay"] = round(ts - conn.start, 6) if conn.subflows else None
            st.sub = len(conn.subflows)
            conn.subflows.append(st)
        elif length == 16:
            st.backup[d] = bool(backup)
            st.addr_id[d] = addr_id

    def _event(self, st: TcpStream, d: int, opt: tuple, ts: float, where: Where) -> None:
        sub = opt[0]
        conn = st.conn
        ev: dict[str, Any] = {"type": _NAMES[sub], "time": round(ts, 6),
                              "file": where[0], "packet": where[1]}
        if conn is not None:
            ev["subflow"] = st.sub
            ev["direction"] = DIRS[d ^ st.flip]
        ev["tcp_stream"] = st.index
        if sub == 3:
            _, echo, aid, addr, port = opt
            ev.update(echo=bool(echo), addr_id=aid, addr=addr_str(addr), port=port)
        elif sub == 4:
            ev["addr_ids"] = list(opt[1])
        elif sub == 5:
            ev["backup"] = bool(opt[1])
            if opt[2] is not None:
                ev["addr_id"] = opt[2]
            st.backup[d] = bool(opt[1])
        elif sub == 6:
            ev["dsn"] = opt[1]
            if conn is not None and conn.last_dsn[d ^ st.flip] is not None:
                ev["dsn"] = widen(conn.last_dsn[d ^ st.flip], opt[1] & M32) if opt[1] <= M32 else opt[1]
        elif sub == 7:
            key = opt[1]
            ev["key"] = f"{key:016x}"
            if conn is not None:
                ev["key_matches_receiver"] = key == conn.keys[1 ^ d ^ st.flip]
                conn.fastclose = True
        elif sub == 8:
            flags, reason = opt[1], opt[2]
            ev.update(transient=bool(flags & 0x1), reason=reason,
                      reason_text=TCPRST_REASONS.get(reason, "unknown"))
        if conn is not None:
            conn.events.append(ev)
        else:
            self.warn(where, f"{ev['type']} on TCP stream {st.index}, which is not a known "
                             "MPTCP subflow (handshake not captured?)")

    def _fallback(self, conn: MptcpConnection, reason: str, ts: float, where: Where) -> None:
        conn.fallback = {"reason": reason, "time": round(ts, 6), "file": where[0],
                         "packet": where[1]}
        conn.events.append({"type": "FALLBACK", "time": round(ts, 6), "file": where[0],
                            "packet": where[1], "reason": reason})

    # -- data level ----------------------------------------------------------------
    def _dss(self, st: TcpStream, d: int, dflags: int, dack: int | None, dsn: int | None,
             ssn: int, dlen: int, ts: float, where: tuple[int, int]) -> None:
        ack8 = dflags & 0x02
        dsn8 = dflags & 0x08
        conn = st.conn
        cd = d ^ st.flip
        if dack is not None:
            od = 1 - cd  # a data ack acknowledges the other direction's data
            last = conn.last_dsn[od]
            if not ack8 and last is not None:
                dack = widen(last, dack)
            prev = conn.data_ack[od]
            if prev is None or 0 < dack - prev < (1 << 62):
                conn.data_ack[od] = dack
                if conn.owners is not None:
                    conn.owners[od].acked = dack
        if dsn is None:
            return
        if dlen == 0:
            if conn.fallback is None:
                self._fallback(conn, "infinite mapping", ts, where)
            return
        last = conn.last_dsn[cd]
        if not dsn8:
            dsn = widen(last, dsn) if last is not None else dsn
        conn.last_dsn[cd] = dsn
        conn.mappings[cd] += 1
        conn.mapped_bytes[cd] += dlen
        conn.coverage[cd].add(dsn, dsn + dlen)
        maps = st.maps[d]
        entry = (ssn, ssn + dlen, dsn)
        if not maps or maps[-1] != entry:
            maps.append(entry)
            if len(maps) > 8:
                del maps[0]
        if dflags & 0x10 and conn.data_fin[cd] is None:
            conn.data_fin[cd] = ts

    def _payload(self, conn: MptcpConnection, st: TcpStream, d: int, rel: int, plen: int,
                 dss: bool, mpc: bool, ts: float, where: Where) -> None:
        cd = d ^ st.flip
        dsn = None
        for ssn, end, mdsn in reversed(st.maps[d]):
            if ssn <= rel < end:
                dsn = mdsn + (rel - ssn)
                break
        if dsn is None and mpc and st.kind == "initial" and rel == 1:
            idsn = conn.idsn[cd]  # MP_CAPABLE with data: the first byte is IDSN + 1
            if idsn is not None:
                dsn = (idsn + 1) & M64
                conn.last_dsn[cd] = dsn
                conn.mappings[cd] += 1
                conn.mapped_bytes[cd] += plen
                conn.coverage[cd].add(dsn, dsn + plen)
                st.maps[d].append((1, 1 + plen, dsn))
        if dsn is None:
            conn.unmapped[cd] += 1
            if not dss and not mpc and conn.mappings[cd] == 0 and st.kind == "initial":
                self._fallback(conn, "data without DSS mapping", ts, where)
            return
        sub = st.sub
        reinj = None
        if conn.owners is not None:
            reinj = conn.owners[cd].send(dsn, dsn + plen, sub)
            if reinj is not None:
                conn.reinjected_packets[cd] += 1
                conn.reinjected_bytes[cd] += reinj[0]
                if len(conn.reinjections) < conn.MAX_LISTED_REINJECTIONS:
                    idsn = conn.idsn[cd]
                    conn.reinjections.append({
                        "time": round(ts, 6), "file": where[0], "packet": where[1],
                        "direction": DIRS[cd], "subflow": sub, "of_subflow": reinj[1],
                        "dsn": dsn, "relative_dsn": None if idsn is None else (dsn - idsn) & M64,
                        "length": plen, "overlap_bytes": reinj[0],
                    })
        if conn.series is not None:
            idsn = conn.idsn[cd]
            conn.series.append((ts, sub, cd, plen, (dsn - idsn) & M64 if idsn is not None else dsn,
                                reinj is not None))
