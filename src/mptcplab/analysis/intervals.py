"""Interval bookkeeping over 64-bit data sequence numbers.

``Coverage`` merges the ranges the DSS mappings declared (how much of the data stream
was mapped, and where the holes are). ``OwnerMap`` remembers which subflows sent
each range so that a send of the same bytes on another subflow is recognised as a
reinjection (the definition Wireshark uses for mptcp.reinjection_of). Both stay small for in-order transfers (ranges coalesce) and the owner
map prunes what the peer has acknowledged at the data level, so memory follows the
data in flight, not the length of the capture.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right


class Coverage:
    """A set of disjoint half-open ranges [lo, hi)."""

    __slots__ = ("starts", "ends", "total")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.total = 0

    def add(self, lo: int, hi: int) -> None:
        if hi <= lo:
            return
        starts, ends = self.starts, self.ends
        if not starts or lo > ends[-1]:
            starts.append(lo)
            ends.append(hi)
            self.total += hi - lo
            return
        if lo >= starts[-1]:  # touches or overlaps the last range: the common case
            if hi > ends[-1]:
                self.total += hi - ends[-1]
                ends[-1] = hi
            return
        i = bisect_left(ends, lo)  # first range that ends at or after lo
        j = bisect_right(starts, hi)  # ranges [i, j) touch [lo, hi)
        if i == j:
            starts.insert(i, lo)
            ends.insert(i, hi)
            self.total += hi - lo
            return
        new_lo = min(lo, starts[i])
        new_hi = max(hi, ends[j - 1])
        removed = sum(ends[k] - starts[k] for k in range(i, j))
        starts[i:j] = [new_lo]
        ends[i:j] = [new_hi]
        self.total += (new_hi - new_lo) - removed

    def holes(self) -> list[tuple[int, int]]:
        """Gaps between the first and the last mapped byte."""
        return [(self.ends[k], self.starts[k + 1]) for k in range(len(self.starts) - 1)]

    @property
    def first(self) -> int | None:
        return self.starts[0] if self.starts else None

    @property
    def last(self) -> int | None:
        return self.ends[-1] if self.ends else None


class OwnerMap:
    """Disjoint ranges [lo, hi), each tagged with the set (bit mask) of subflows that sent it."""

    __slots__ = ("starts", "ends", "masks", "limit", "acked")

    def __init__(self, limit: int = 4096) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.masks: list[int] = []
        self.limit = limit
        self.acked = 0  # highest data ack seen from the peer

    def send(self, lo: int, hi: int, sub: int) -> tuple[int, int] | None:
        """Record bytes [lo, hi) sent on subflow ``sub``.

        Returns (bytes of it some other subflow sent before, lowest such subflow) or
        None. Bytes only this subflow sent before are a subflow-level retransmission,
        not a reinjection, and return None.
        """
        starts, ends, masks = self.starts, self.ends, self.masks
        bit = 1 << sub
        if not starts or lo >= ends[-1]:
            if starts and lo == ends[-1] and masks[-1] == bit:
                ends[-1] = hi
            else:
                starts.append(lo)
                ends.append(hi)
                masks.append(bit)
                if len(starts) > self.limit:
                    self._trim()
            return None
        i = max(bisect_right(starts, lo) - 1, 0)
        while i < len(starts) and ends[i] <= lo:
            i += 1
        j = i
        overlap = 0
        others = 0
        pieces: list[tuple[int, int, int]] = []
        pos = lo
        n = len(starts)
        while j < n and starts[j] < hi:
            s, e, m = starts[j], ends[j], masks[j]
            if s < lo:
                pieces.append((s, lo, m))
            elif s > pos:
                pieces.append((pos, s, bit))
            a, b = max(s, lo), min(e, hi)
            if m & ~bit:
                overlap += b - a
                others |= m & ~bit
            pieces.append((a, b, m | bit))
            if e > hi:
                pieces.append((hi, e, m))
            pos = b
            j += 1
        if pos < hi:
            pieces.append((pos, hi, bit))
        starts[i:j] = [p[0] for p in pieces]
        ends[i:j] = [p[1] for p in pieces]
        masks[i:j] = [p[2] for p in pieces]
        if len(starts) > self.limit:
            self._trim()
        if not overlap:
            return None
        return overlap, (others & -others).bit_length() - 1

    def forget_below(self, acked: int) -> None:
        """Drop ranges the peer acknowledged at the data level (cannot be reinjected)."""
        k = bisect_right(self.ends, acked)
        if k:
            del self.starts[:k], self.ends[:k], self.masks[:k]

    def _trim(self) -> None:
        """Keep memory bounded once ``limit`` ranges are held: forget what the peer
        acknowledged (a later resend of it is no longer reported), and if that is not
        enough (no data ack captured), the oldest half."""
        self.forget_below(self.acked)
        if len(self.starts) > self.limit * 3 // 4:
            k = len(self.starts) // 2
            del self.starts[:k], self.ends[:k], self.masks[:k]
