"""Link layer and IP decoding down to the TCP header, without building objects.

``decode(linktype, data)`` returns ``(src, dst, tcp_offset, payload_len)`` for a TCP
segment (addresses as raw 4- or 16-byte strings), None for anything that is not TCP,
or a string describing why the packet is malformed. Payload length comes from the IP
length fields, so captures cut short by a snaplen still count every byte sent.
"""

from __future__ import annotations

import ipaddress

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_RAW_BSD = 12
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229

SUPPORTED_LINKTYPES = {
    LINKTYPE_NULL: "null/loopback",
    LINKTYPE_ETHERNET: "ethernet",
    LINKTYPE_RAW: "raw IP",
    LINKTYPE_RAW_BSD: "raw IP",
    LINKTYPE_LINUX_SLL: "linux cooked (SLL)",
    LINKTYPE_LINUX_SLL2: "linux cooked v2 (SLL2)",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
}

_IPV6_EXT = {0, 43, 60, 51}  # hop-by-hop, routing, destination options, AH
Decoded = tuple[bytes, bytes, int, int]


def _l3_offset(linktype: int, data: bytes) -> int:
    """Offset of the IP header, or -1 when the frame carries no IP."""
    if linktype == 1:
        if len(data) < 14:
            return -1
        off = 12
        et = (data[off] << 8) | data[off + 1]
        while et in (0x8100, 0x88A8) and len(data) >= off + 6:
            off += 4
            et = (data[off] << 8) | data[off + 1]
        return off + 2 if et in (0x0800, 0x86DD) else -1
    if linktype == 113:
        if len(data) < 16:
            return -1
        et = (data[14] << 8) | data[15]
        return 16 if et in (0x0800, 0x86DD) else -1
    if linktype == 276:
        if len(data) < 20:
            return -1
        et = (data[0] << 8) | data[1]
        return 20 if et in (0x0800, 0x86DD) else -1
    if linktype in (101, 12, 228, 229):
        return 0
    if linktype == 0:
        return 4 if len(data) >= 4 else -1
    return -1


def decode(linktype: int, data: bytes) -> Decoded | str | None:
    """Find the TCP header in a frame: see the module docstring for the result."""
    if linktype == 1 and len(data) >= 34 and data[12] == 8 and data[13] == 0:
        off = 14  # Ethernet + IPv4: the common case, no call
    else:
        off = _l3_offset(linktype, data)
    if off < 0 or len(data) < off + 20:
        return None
    ver = data[off] >> 4
    if ver == 4:
        ihl = (data[off] & 0x0F) * 4
        if ihl < 20:
            return f"IPv4 header length {ihl} < 20"
        if data[off + 9] != 6:
            return None
        if ((data[off + 6] & 0x1F) << 8) | data[off + 7]:
            return None  # non-first fragment: no TCP header here
        total = (data[off + 2] << 8) | data[off + 3]
        if total < ihl:  # TSO on the sending host writes 0
            total = len(data) - off
        src = data[off + 12:off + 16]
        dst = data[off + 16:off + 20]
        toff = off + ihl
        l4len = total - ihl
    elif ver == 6:
        if len(data) < off + 40:
            return "truncated IPv6 header"
        nxt = data[off + 6]
        l4len = (data[off + 4] << 8) | data[off + 5]
        if l4len == 0:  # jumbogram or TSO
            l4len = len(data) - off - 40
        src = data[off + 8:off + 24]
        dst = data[off + 24:off + 40]
        toff = off + 40
        while nxt != 6:
            if nxt in _IPV6_EXT:
                if len(data) < toff + 2:
                    return "truncated IPv6 extension header"
                hl = (data[toff + 1] + 2) * 4 if nxt == 51 else (data[toff + 1] + 1) * 8
            elif nxt == 44:
                if len(data) < toff + 8:
                    return "truncated IPv6 fragment header"
                if ((data[toff + 2] << 8) | data[toff + 3]) & 0xFFF8:
                    return None
                hl = 8
            else:
                return None
            nxt = data[toff]
            toff += hl
            l4len -= hl
    else:
        return None
    if len(data) < toff + 20:
        return "packet cut before the end of the TCP header"
    thl = (data[toff + 12] >> 4) * 4
    if thl < 20:
        return f"TCP header length {thl} < 20"
    if len(data) < toff + thl:
        return "packet cut before the end of the TCP options"
    plen = l4len - thl
    if plen < 0:
        return f"TCP header ({thl} bytes) longer than the IP payload ({l4len} bytes)"
    return (src, dst, toff, plen)


def addr_str(raw: bytes) -> str:
    """Printable form of a raw 4- or 16-byte address."""
    return str(ipaddress.ip_address(raw))
