"""Streaming readers for pcap and pcapng files.

Records come out one at a time as ``(ts, linktype, data, pktno, tag)``; nothing is kept
after it is yielded, so memory does not grow with the capture. Damage (truncated
file, impossible lengths, unknown blocks) becomes a warning naming the packet number
and the reader stops or skips, never raises.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

Record = tuple[float, int, bytes, int, int]
Warn = Callable[[int, str], None]

CHUNK = 1 << 20
MAX_RECORD = 1 << 18  # 256 KiB: larger than any snaplen tcpdump writes (GSO is 64 KiB)

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"


def sniff_format(head: bytes) -> str | None:
    """'pcap', 'pcapng' or None from the first four bytes of a file."""
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_SHB:
        return "pcapng"
    return None


def iter_file(path: str, warn: Warn, info: dict | None = None, tag: int = 0) -> Iterator[Record]:
    """Yield every record of a pcap or pcapng file; problems go to ``warn(pktno, msg)``.

    ``info`` (when given) receives 'format' and the set of 'linktypes' seen; ``tag``
    (the caller's file index) is the last element of every record.
    """
    info = info if info is not None else {}
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed in finally, generator lifetime
    except OSError as exc:
        warn(0, f"cannot open: {exc.strerror}")
        return
    try:
        head = f.read(4)
        fmt = sniff_format(head)
        info["format"] = fmt
        info.setdefault("linktypes", set())
        f.seek(0)
        if fmt == "pcap":
            yield from _iter_pcap(f, warn, info, tag)
        elif fmt == "pcapng":
            yield from _iter_pcapng(f, warn, info, tag)
        else:
            warn(0, "not a pcap or pcapng file (unknown magic number)")
    finally:
        f.close()


def _iter_pcap(f, warn: Warn, info: dict, tag: int) -> Iterator[Record]:
    hdr = f.read(24)
    if len(hdr) < 24:
        warn(0, "truncated pcap file header")
        return
    endian, scale = PCAP_MAGICS[hdr[:4]]
    linktype = struct.unpack(endian + "I", hdr[20:24])[0] & 0x0FFFFFFF
    info["linktypes"].add(linktype)
    unpack = struct.Struct(endian + "IIII").unpack_from
    buf = b""
    pos = 0
    n = 0
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            break
        buf = buf[pos:] + chunk if pos < len(buf) else chunk
        pos = 0
        end = len(buf)
        while pos + 16 <= end:
            sec, frac, incl, _orig = unpack(buf, pos)
            if incl > MAX_RECORD:
                warn(n + 1, f"record length {incl} is impossible; rest of file skipped")
                return
            stop = pos + 16 + incl
            if stop > end:
                break
            n += 1
            yield (sec + frac * scale, linktype, buf[pos + 16:stop], n, tag)
            pos = stop
    if pos < len(buf):
        warn(n + 1, f"file truncated inside packet {n + 1} ({len(buf) - pos} bytes left over)")


def _iter_pcapng(f, warn: Warn, info: dict, tag: int) -> Iterator[Record]:
    endian = "<"
    ifaces: list[tuple[int, float]] = []  # (linktype, seconds per tick)
    n = 0
    while True:
        head = f.read(8)
        if not head:
            return
        if len(head) < 8:
            warn(n + 1, "file truncated inside a block header")
            return
        btype_raw = head[:4]
        if btype_raw == PCAPNG_SHB:
            bom = f.read(4)
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                warn(n + 1, "bad pcapng byte-order magic; rest of file skipped")
                return
            blen = struct.unpack(endian + "I", head[4:8])[0]
            if blen < 28 or blen % 4 or blen > MAX_RECORD:
                warn(n + 1, f"bad section header length {blen}; rest of file skipped")
                return
            rest = f.read(blen - 12)
            if len(rest) < blen - 12:
                warn(n + 1, "file truncated inside a section header")
                return
            ifaces = []
            continue
        btype, blen = struct.unpack(endian + "II", head)
        if blen < 12 or blen % 4 or blen > MAX_RECORD:
            warn(n + 1, f"bad block length {blen}; rest of file skipped")
            return
        body = f.read(blen - 8)
        if len(body) < blen - 8:
            warn(n + 1, f"file truncated inside packet {n + 1}")
            return
        body = body[:-4]
        if btype == 1:  # interface description
            if len(body) < 8:
                warn(n + 1, "short interface description block")
                continue
            linktype = struct.unpack_from(endian + "H", body, 0)[0]
            ifaces.append((linktype, _tsresol(body[8:], endian)))
            info["linktypes"].add(linktype)
        elif btype in (6, 2):  # enhanced packet / obsolete packet block
            n += 1
            if len(body) < 20:
                warn(n, "short packet block")
                continue
            if btype == 6:
                ifid, hi, lo, caplen, _ = struct.unpack_from(endian + "IIIII", body, 0)
            else:
                ifid, _drops, hi, lo, caplen, _ = struct.unpack_from(endian + "HHIIII", body, 0)
            if ifid >= len(ifaces):
                warn(n, f"packet names unknown interface {ifid}")
                continue
            data = body[20:20 + caplen]
            if len(data) < caplen:
                warn(n, "captured length exceeds block")
            linktype, tick = ifaces[ifid]
            yield (((hi << 32) | lo) * tick, linktype, data, n, tag)
        elif btype == 3:  # simple packet block: interface 0, no timestamp
            n += 1
            if not ifaces or len(body) < 4:
                warn(n, "simple packet block without interface")
                continue
            yield (0.0, ifaces[0][0], body[4:], n, tag)
        # other blocks (name resolution, statistics, custom) carry no packets


def _tsresol(options: bytes, endian: str) -> float:
    """Seconds per timestamp tick from an IDB's options (if_tsresol, code 9); default 1 us."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack_from(endian + "HH", options, pos)
        if code == 0:
            break
        if code == 9 and length >= 1 and pos + 5 <= len(options):
            v = options[pos + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        pos += 4 + ((length + 3) & ~3)
    return 1e-6
