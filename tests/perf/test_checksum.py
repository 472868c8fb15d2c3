"""End-to-end data check: the real sender and receiver loops, with and without corruption."""

from __future__ import annotations

import socket
import threading
import zlib

from mptcplab.workloads.perf.stream import Pattern
from mptcplab.workloads.perf.transfer import StreamEnd, compare, recv_stream, send_stream


def _proxy(src: socket.socket, dst: socket.socket, flip_at: int | None, drop_at: int | None) -> None:
    """Copy SRC to DST, flipping one byte at stream offset FLIP_AT or dropping 1 byte at DROP_AT."""
    seen = 0
    while True:
        data = bytearray(src.recv(65536))
        if not data:
            break
        if flip_at is not None and seen <= flip_at < seen + len(data):
            data[flip_at - seen] ^= 0x01
        if drop_at is not None and seen <= drop_at < seen + len(data):
            del data[drop_at - seen]
            seen += 1
        seen += len(data)
        dst.sendall(data)
    dst.shutdown(socket.SHUT_WR)
    while dst.recv(4096):  # relay the receiver's close back to the sender
        pass
    src.close()
    dst.close()


def _transfer(nbytes: int, flip_at: int | None = None, drop_at: int | None = None) -> list[str]:
    a, b = socket.socketpair()  # sender -> proxy
    c, d = socket.socketpair()  # proxy -> receiver
    pattern = Pattern(1234)
    sent, got = StreamEnd("c2s/0", "sender"), StreamEnd("c2s/0", "receiver")
    threads = [
        threading.Thread(target=send_stream, args=(a, pattern, sent),
                         kwargs={"duration": None, "nbytes": nbytes, "rate_bps": None, "stop": threading.Event()}),
        threading.Thread(target=_proxy, args=(b, c, flip_at, drop_at)),
        threading.Thread(target=recv_stream, args=(d, got)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sent.bytes == nbytes and sent.error is None
    return compare(sent.to_dict(), got.to_dict())


def test_clean_transfer_passes() -> None:
    assert _transfer(5_000_000) == []


def test_one_flipped_bit_fails_the_check() -> None:
    problems = _transfer(5_000_000, flip_at=3_333_333)
    assert len(problems) == 1 and "corrupted" in problems[0]


def test_a_lost_byte_fails_the_check() -> None:
    problems = _transfer(2_000_000, drop_at=10)
    assert len(problems) == 1 and "receiver got 1999999" in problems[0]


def test_swapped_blocks_fail_the_check() -> None:
    """Reordering keeps the byte count; only the checksum can see it."""
    pattern = Pattern(5)
    good = bytes(pattern.slice(0, 4096))
    swapped = good[2048:] + good[:2048]
    assert zlib.crc32(good) == pattern.crc(4096)
    sender = {"key": "k", "role": "sender", "bytes": 4096, "crc32": pattern.crc(4096)}
    receiver = {"key": "k", "role": "receiver", "bytes": 4096, "crc32": zlib.crc32(swapped), "verified": True}
    assert compare(sender, receiver) and "corrupted" in compare(sender, receiver)[0]
