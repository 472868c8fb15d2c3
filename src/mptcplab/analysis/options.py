"""MPTCP option parsing (RFC 8684, TCP option kind 30).

``parse_mptcp(opt)`` takes one option (kind and length bytes included) and returns a
tuple whose first element is the subtype number, or a string saying what is wrong.
``iter_tcp_options`` walks a TCP options block and yields each kind-30 option.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

MPTCP_KIND = 30

SUBTYPES = {
    0: "MP_CAPABLE",
    1: "MP_JOIN",
    2: "DSS",
    3: "ADD_ADDR",
    4: "REMOVE_ADDR",
    5: "MP_PRIO",
    6: "MP_FAIL",
    7: "MP_FASTCLOSE",
    8: "MP_TCPRST",
    15: "MP_EXPERIMENTAL",
}

TCPRST_REASONS = {
    0: "unspecified",
    1: "mptcp-specific error",
    2: "lack of resources",
    3: "administratively prohibited",
    4: "too much outstanding data",
    5: "unacceptable performance",
    6: "middlebox interference",
}

DSS_DATA_FIN = 0x10
DSS_DSN8 = 0x08
DSS_MAP = 0x04
DSS_ACK8 = 0x02
DSS_ACK = 0x01

_be = int.from_bytes


def key_token(key: int) -> int:
    """Token of a 64-bit key: the first 4 bytes of SHA-256(key) (RFC 8684 section 3.2)."""
    return _be(hashlib.sha256(key.to_bytes(8, "big")).digest()[:4], "big")


def key_idsn(key: int) -> int:
    """Initial data sequence number of a key: the last 8 bytes of SHA-256(key)."""
    return _be(hashlib.sha256(key.to_bytes(8, "big")).digest()[-8:], "big")


def iter_tcp_options(opts: bytes) -> Iterator[bytes | str]:
    """Yield every MPTCP option of a TCP options block; a damaged block yields a string."""
    i = 0
    n = len(opts)
    while i < n:
        kind = opts[i]
        if kind == 1:
            i += 1
            continue
        if kind == 0:
            return
        if i + 1 >= n:
            yield f"TCP option kind {kind} without length"
            return
        ln = opts[i + 1]
        if ln < 2 or i + ln > n:
            yield f"TCP option kind {kind} has bad length {ln}"
            return
        if kind == 30:
            yield opts[i:i + ln]
        i += ln


def parse_mptcp(opt: bytes) -> tuple | str:
    """Decode one MPTCP option. See the module docstring."""
    ln = len(opt)
    if ln < 3:
        return f"MPTCP option length {ln} < 3"
    sub = opt[2] >> 4
    if sub == 2:
        return _dss(opt, ln)
    if sub == 0:
        if ln < 4:
            return "MP_CAPABLE shorter than 4 bytes"
        version = opt[2] & 0x0F
        flags = opt[3]
        if ln == 4:
            return (0, version, flags, None, None, None)
        if ln == 12:
            return (0, version, flags, _be(opt[4:12], "big"), None, None)
        if ln == 20:
            return (0, version, flags, _be(opt[4:12], "big"), _be(opt[12:20], "big"), None)
        if ln in (22, 24):
            return (0, version, flags, _be(opt[4:12], "big"), _be(opt[12:20], "big"),
                    _be(opt[20:22], "big"))
        return f"MP_CAPABLE with bad length {ln}"
    if sub == 1:
        backup = opt[2] & 0x01
        if ln == 12:
            return (1, 12, backup, opt[3], _be(opt[4:8], "big"), _be(opt[8:12], "big"))
        if ln == 16:
            return (1, 16, backup, opt[3], None, _be(opt[12:16], "big"))
        if ln == 24:
            return (1, 24, backup, None, None, None)
        return f"MP_JOIN with bad length {ln}"
    if sub == 3:
        echo = opt[2] & 0x01
        if ln in (8, 10, 16, 18):
            alen = 4
        elif ln in (20, 22, 28, 30):
            alen = 16
        else:
            return f"ADD_ADDR with bad length {ln}"
        port = _be(opt[4 + alen:6 + alen], "big") if ln in (10, 18, 22, 30) else None
        return (3, echo, opt[3], opt[4:4 + alen], port)
    if sub == 4:
        if ln < 4:
            return "REMOVE_ADDR without address id"
        return (4, tuple(opt[3:]))
    if sub == 5:
        if ln not in (3, 4):
            return f"MP_PRIO with bad length {ln}"
        return (5, opt[2] & 0x01, opt[3] if ln == 4 else None)
    if sub == 6:
        if ln != 12:
            return f"MP_FAIL with bad length {ln}"
        return (6, _be(opt[4:12], "big"))
    if sub == 7:
        if ln != 12:
            return f"MP_FASTCLOSE with bad length {ln}"
        return (7, _be(opt[4:12], "big"))
    if sub == 8:
        if ln != 4:
            return f"MP_TCPRST with bad length {ln}"
        return (8, opt[2] & 0x0F, opt[3])
    return (sub,)


def _dss(opt: bytes, ln: int) -> tuple | str:
    """DSS: (2, flags, data_ack, ack8, dsn, dsn8, ssn, dlen, checksum)."""
    if ln < 4:
        return "DSS shorter than 4 bytes"
    flags = opt[3]
    pos = 4
    ack = None
    ack8 = flags & DSS_ACK8
    if flags & DSS_ACK:
        alen = 8 if ack8 else 4
        if ln < pos + alen:
            return f"DSS with bad length {ln} for flags {flags:#04x}"
        ack = _be(opt[pos:pos + alen], "big")
        pos += alen
    dsn = ssn = dlen = csum = None
    dsn8 = flags & DSS_DSN8
    if flags & DSS_MAP:
        dl = 8 if dsn8 else 4
        if ln != pos + dl + 6 and ln != pos + dl + 8:
            return f"DSS with bad length {ln} for flags {flags:#04x}"
        dsn = _be(opt[pos:pos + dl], "big")
        pos += dl
        ssn = _be(opt[pos:pos + 4], "big")
        dlen = _be(opt[pos + 4:pos + 6], "big")
        if ln == pos + 8:
            csum = _be(opt[pos + 6:pos + 8], "big")
    elif ln != pos:
        return f"DSS with bad length {ln} for flags {flags:#04x}"
    return (2, flags, ack, ack8, dsn, dsn8, ssn, dlen, csum)
