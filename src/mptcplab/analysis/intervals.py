"""Interval bookkeeping over 64-bit data sequence numbers.

``Coverage`` merges the ranges the DSS mappings declared (how much of the data stream
was mapped, and where the holes are). ``OwnerMap`` remembers which subflow first sent
each range so that a later send of the same bytes on another subflow is recognised as
a reinjection. Both stay small for in-order transfers (ranges coalesce) and the owner
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
    """Disjoint ranges [lo, hi), each tagged with the subflow that sent it first."""

    __slots__ = ("starts", "ends", "owners", "limit", "acked")

    def __init__(self, limit: int = 4096) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.owners: list[int] = []
        self.limit = limit
        self.acked = 0  # highest data ack seen from the peer

    def send(self, lo: int, hi: int, owner: int) -> tuple[int, int] | None:
        """Record bytes [lo, hi) sent on ``owner``.

        Returns (bytes already sent by another subflow, that subflow) or None. Bytes
        already sent by the same owner are a subflow-level retransmission, not a
        reinjection, and return None.
        """
        starts, ends, owners = self.starts, self.ends, self.owners
        if not starts or lo >= ends[-1]:
            if starts and lo == ends[-1] and owners[-1] == owner:
                ends[-1] = hi
            else:
                starts.append(lo)
                ends.append(hi)
                owners.append(owner)
                if len(starts) > 256:
                    self._trim()
            return None
        i = max(bisect_right(starts, lo) - 1, 0)
        overlap = 0
        other = -1
        gaps: list[tuple[int, int]] = []
        pos = lo
        n = len(starts)
        while i < n and starts[i] < hi:
            s, e = starts[i], ends[i]
            if e > pos:
                if s > pos:
                    gaps.append((pos, s))
                cut_lo = max(s, lo)
                cut_hi = min(e, hi)
                if cut_hi > cut_lo and owners[i] != owner:
                    overlap += cut_hi - cut_lo
                    other = owners[i]
                pos = max(pos, e)
            i += 1
        if pos < hi:
            gaps.append((pos, hi))
        for g_lo, g_hi in gaps:
            k = bisect_left(starts, g_lo)
            starts.insert(k, g_lo)
            ends.insert(k, g_hi)
            owners.insert(k, owner)
        if len(starts) > 256:
            self._trim()
        return (overlap, other) if overlap else None

    def forget_below(self, acked: int) -> None:
        """Drop ranges the peer acknowledged at the data level (cannot be reinjected)."""
        k = bisect_right(self.ends, acked)
        if k:
            del self.starts[:k], self.ends[:k], self.owners[:k]

    def _trim(self) -> None:
        """Keep memory bounded: forget acknowledged ranges, and if no data ack is
        seen (one direction captured only), the oldest half beyond the limit."""
        self.forget_below(self.acked)
        if len(self.starts) > self.limit:
            k = len(self.starts) // 2
            del self.starts[:k], self.ends[:k], self.owners[:k]
