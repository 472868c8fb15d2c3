"""The data stream both ends agree on, and its CRC-32 without touching every byte twice.

Stream byte i is PATTERN[i mod PERIOD], PATTERN being PERIOD pseudo-random bytes from a
seed exchanged at the start. The sender hands slices of one precomputed buffer to
sendall (no per-byte work in Python), and computes the CRC-32 of what it sent from the
byte count alone: CRC-32 is linear, so the CRC of k periods follows from the CRC of one
period by "append N zero bytes" operators (zlib's crc32_combine, here in Python,
O(log n) 32x32 GF(2) matrix products). The receiver runs zlib.crc32 over every byte it
got; both CRCs and byte counts are compared at the end. PERIOD is not a power of two, so
a lost, repeated or misplaced block shifts the pattern and changes the CRC.
"""

from __future__ import annotations

import random
import zlib
from functools import lru_cache

PERIOD = 3 * (1 << 20) + 12347
MAX_CHUNK = 1 << 20
_POLY = 0xEDB88320

Matrix = tuple[int, ...]


def _times(mat: Matrix, vec: int) -> int:
    out = 0
    i = 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _compose(a: Matrix, b: Matrix) -> Matrix:
    """The operator 'apply B, then A'."""
    return tuple(_times(a, col) for col in b)


@lru_cache(maxsize=1)
def _one_byte() -> Matrix:
    one_bit = (_POLY, *(1 << n for n in range(31)))
    two = _compose(one_bit, one_bit)
    four = _compose(two, two)
    return _compose(four, four)


@lru_cache(maxsize=256)
def zeros_operator(nbytes: int) -> Matrix:
    """Operator that turns crc(A) into crc(A || NBYTES zero bytes) ^ crc(NBYTES zero bytes)."""
    result: Matrix = tuple(1 << n for n in range(32))
    square = _one_byte()
    n = nbytes
    while n:
        if n & 1:
            result = _compose(square, result)
        n >>= 1
        if n:
            square = _compose(square, square)
    return result


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """crc32(A || B) from crc32(A), crc32(B) and len(B), like zlib's crc32_combine."""
    if len2 <= 0:
        return crc1
    return _times(zeros_operator(len2), crc1) ^ crc2


class Pattern:
    """PERIOD seeded pseudo-random bytes, extended by MAX_CHUNK so every slice is contiguous."""

    def __init__(self, seed: int, period: int = PERIOD, max_chunk: int = MAX_CHUNK) -> None:
        self.seed = seed
        self.period = period
        body = random.Random(seed).randbytes(period)
        reps = -(-max_chunk // period) + 1
        self.buffer = (body * reps)[: period + max_chunk]
        self.view = memoryview(self.buffer)
        self.period_crc = zlib.crc32(body)

    def slice(self, offset: int, length: int) -> memoryview:
        """LENGTH stream bytes starting at stream offset OFFSET (LENGTH <= max_chunk)."""
        start = offset % self.period
        return self.view[start:start + length]

    def crc(self, nbytes: int) -> int:
        """CRC-32 of the first NBYTES of the stream, in O(log NBYTES)."""
        q, r = divmod(nbytes, self.period)
        # binary doubling over q: (crc, shift operator) of 2^j periods; all periods are equal,
        # so the order in which the blocks are appended does not matter
        acc_crc = 0
        block_crc, block_op = self.period_crc, zeros_operator(self.period)
        while q:
            if q & 1:
                acc_crc = _times(block_op, acc_crc) ^ block_crc
            q >>= 1
            if q:
                block_crc = _times(block_op, block_crc) ^ block_crc
                block_op = _compose(block_op, block_op)
        crc = acc_crc
        if r:
            crc = crc32_combine(crc, zlib.crc32(self.view[:r]), r)
        return crc
