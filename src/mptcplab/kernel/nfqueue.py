"""A minimal, fast NFQUEUE client on a raw NETLINK_NETFILTER socket (no extra package).

Built for one job: hold packets in the kernel and release them later, in order, with
as few syscalls as possible. So it asks for metadata and one payload byte
(NFQNL_COPY_PACKET with copy range 1: with NFQNL_COPY_META the kernel leaves out the
packet length, NFQA_CAP_LEN), keeps GSO super-packets whole (NFQA_CFG_F_GSO: one 64 KB
message instead of 44), fails open when the queue or socket is full
(NFQA_CFG_F_FAIL_OPEN: the packet skips the delay rather than being dropped), and
releases packets with one NFQNL_MSG_VERDICT_BATCH message, which accepts every
queued packet whose id is <= N. Packet ids grow monotonically per queue, so a FIFO
delay line maps onto batch verdicts exactly.

One socket may bind many queue numbers; `recv_packets` drains every pending message
without blocking and returns (queue, packet id, length) triples. The socket lives in
the network namespace of the thread that created it.

Layouts (include/uapi/linux/netfilter/nfnetlink_queue.h): every message is a
nlmsghdr, then struct nfgenmsg {u8 family; u8 version; be16 res_id (queue number)},
then netlink attributes. Multi-byte values inside nfqueue attributes are big-endian.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from mptcplab.errors import KernelError

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3

NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5

NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2

NFQNL_COPY_NONE = 0
NFQNL_COPY_META = 1
NFQNL_COPY_PACKET = 2

NFQA_CFG_F_FAIL_OPEN = 1
NFQA_CFG_F_CONNTRACK = 2
NFQA_CFG_F_GSO = 4

NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_TIMESTAMP = 4
NFQA_CAP_LEN = 13

NF_DROP = 0
NF_ACCEPT = 1

NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NLMSG_DONE = 3
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
SO_RCVBUFFORCE = 33

_NLMSGHDR = struct.Struct("=IHHII")
_NFGEN = struct.Struct(">BBH")  # family, version (NFNETLINK_V0), res_id = queue number
_ATTR = struct.Struct("=HH")
_PKT_HDR = struct.Struct(">IHB")
_BE32 = struct.Struct(">I")

MSG_TYPE_PACKET = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET
_MSG_TYPE_CONFIG = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_CONFIG
_MSG_TYPE_VERDICT = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT
_MSG_TYPE_BATCH = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT_BATCH


def _attr(kind: int, payload: bytes) -> bytes:
    length = _ATTR.size + len(payload)
    pad = (-length) % 4
    return _ATTR.pack(length, kind) + payload + b"\0" * pad


def _message(msg_type: int, queue: int, attrs: bytes, seq: int, flags: int = NLM_F_REQUEST) -> bytes:
    body = _NFGEN.pack(socket.AF_UNSPEC, 0, queue) + attrs
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), msg_type, flags, seq, 0) + body


def verdict_batch_message(queue: int, last_id: int, verdict: int = NF_ACCEPT) -> bytes:
    """One message that gives VERDICT to every packet of QUEUE with id <= LAST_ID."""
    return _message(_MSG_TYPE_BATCH, queue, _attr(NFQA_VERDICT_HDR, struct.pack(">II", verdict, last_id)), 0)


def verdict_message(queue: int, packet_id: int, verdict: int) -> bytes:
    """One message that gives VERDICT to the single packet PACKET_ID."""
    return _message(_MSG_TYPE_VERDICT, queue, _attr(NFQA_VERDICT_HDR, struct.pack(">II", verdict, packet_id)), 0)


def parse_packets(buf: memoryview | bytes, nbytes: int, out: list[tuple[int, int, int]]) -> None:
    """Append (queue, packet id, length) for each packet message in BUF[:NBYTES].

    Length is NFQA_CAP_LEN (the full skb length; sent because no payload is copied).
    Other message types (errors for acked requests) are skipped here.
    """
    off = 0
    unpack_hdr = _NLMSGHDR.unpack_from
    unpack_attr = _ATTR.unpack_from
    while off + 16 <= nbytes:
        mlen, mtype, _flags, _seq, _pid = unpack_hdr(buf, off)
        if mlen < 16:
            break
        if mtype == MSG_TYPE_PACKET:
            queue = (buf[off + 18] << 8) | buf[off + 19]
            pos = off + 20
            end = off + mlen
            pid = -1
            length = 0
            while pos + 4 <= end:
                alen, akind = unpack_attr(buf, pos)
                if alen < 4:
                    break
                akind &= 0x7FFF
                if akind == NFQA_PACKET_HDR:
                    pid = _BE32.unpack_from(buf, pos + 4)[0]
                elif akind == NFQA_CAP_LEN:
                    length = _BE32.unpack_from(buf, pos + 4)[0]
                pos += (alen + 3) & ~3
            if pid >= 0:
                out.append((queue, pid, length))
        off += (mlen + 3) & ~3


@dataclass
class QueueConfig:
    """How one queue is set up: one payload byte, GSO whole, fail open, a long queue.

    COPY_META would copy no payload at all, but then the kernel omits NFQA_CAP_LEN and
    the packet length is unknown; copying one byte costs nothing measurable and makes
    the kernel report the full length.
    """

    num: int
    maxlen: int = 65536
    copy_mode: int = NFQNL_COPY_PACKET
    copy_range: int = 1
    flags: int = NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN


class NfQueueSocket:
    """A NETLINK_NETFILTER socket bound to one or more queue numbers."""

    def __init__(self, rcvbuf: int = 64 << 20, bufsize: int = 1 << 20) -> None:
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
        except OSError as exc:
            raise KernelError(f"cannot open a NETLINK_NETFILTER socket: {exc.strerror}") from None
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        # Without this, an overrun makes recv fail with ENOBUFS; fail-open covers the packet.
        self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
        self.sock.bind((0, 0))
        self.buf = bytearray(bufsize)
        self.view = memoryview(self.buf)
        self._seq = 0
        self.bound: list[int] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        for num in list(self.bound):
            with contextlib.suppress(KernelError):
                self.unbind(num)
        self.sock.close()

    def _request(self, msg_type: int, queue: int, attrs: bytes) -> None:
        """Send a config request and wait for its acknowledgement (raises on error)."""
        self._seq += 1
        seq = self._seq
        self.sock.send(_message(msg_type, queue, attrs, seq, NLM_F_REQUEST | NLM_F_ACK))
        while True:
            n = self.sock.recv_into(self.buf)
            off = 0
            while off + 16 <= n:
                mlen, mtype, _f, mseq, _p = _NLMSGHDR.unpack_from(self.buf, off)
                if mlen < 16:
                    break
                if mtype == NLMSG_ERROR and mseq == seq:
                    err = struct.unpack_from("=i", self.buf, off + 16)[0]
                    if err:
                        raise KernelError(f"nfqueue config of queue {queue}: {os.strerror(-err)}")
                    return
                off += (mlen + 3) & ~3

    def bind(self, cfg: QueueConfig) -> None:
        """Take queue CFG.num for this socket and configure it (EBUSY if another holds it)."""
        cmd = struct.pack("=BxH", NFQNL_CFG_CMD_BIND, 0)
        self._request(_MSG_TYPE_CONFIG, cfg.num, _attr(NFQA_CFG_CMD, cmd))
        self.bound.append(cfg.num)
        params = struct.pack(">IB", cfg.copy_range, cfg.copy_mode)
        attrs = (
            _attr(NFQA_CFG_PARAMS, params)
            + _attr(NFQA_CFG_QUEUE_MAXLEN, _BE32.pack(cfg.maxlen))
            + _attr(NFQA_CFG_FLAGS, _BE32.pack(cfg.flags))
            + _attr(NFQA_CFG_MASK, _BE32.pack(cfg.flags))
        )
        self._request(_MSG_TYPE_CONFIG, cfg.num, attrs)

    def unbind(self, num: int) -> None:
        """Give queue NUM back; the kernel drops packets it still holds for us."""
        cmd = struct.pack("=BxH", NFQNL_CFG_CMD_UNBIND, 0)
        if num in self.bound:
            self.bound.remove(num)
        self._request(_MSG_TYPE_CONFIG, num, _attr(NFQA_CFG_CMD, cmd))

    def recv_packets(self, out: list[tuple[int, int, int]], limit: int = 4096) -> int:
        """Drain up to LIMIT pending messages without blocking; append packets to OUT.

        Returns the number of datagrams read (0 when nothing was pending).
        """
        recv_into = self.sock.recv_into
        buf = self.buf
        view = self.view
        count = 0
        while count < limit:
            try:
                n = recv_into(buf, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    continue
                raise
            count += 1
            parse_packets(view, n, out)
        return count

    def accept_upto(self, queue: int, last_id: int) -> None:
        """Release every packet of QUEUE with id <= LAST_ID (one syscall)."""
        self.sock.send(verdict_batch_message(queue, last_id, NF_ACCEPT))

    def send_verdicts(self, messages: Iterable[bytes]) -> None:
        """Send several verdict messages in one syscall (they are concatenated)."""
        data = b"".join(messages)
        if data:
            self.sock.send(data)

    def drop(self, queue: int, packet_id: int) -> None:
        """Drop one packet now."""
        self.sock.send(verdict_message(queue, packet_id, NF_DROP))


def proc_stats() -> dict[int, dict[str, int]]:
    """Per-queue kernel counters of the current namespace (/proc/net/netfilter/nfnetlink_queue).

    Columns: queue, portid, waiting, copy mode, copy range, dropped (queue full),
    user_dropped (socket full), last id, 1.
    """
    stats: dict[int, dict[str, int]] = {}
    try:
        with open("/proc/net/netfilter/nfnetlink_queue") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 8:
                    continue
                num = int(parts[0])
                stats[num] = {
                    "waiting": int(parts[2]),
                    "dropped": int(parts[5]),
                    "user_dropped": int(parts[6]),
                    "last_id": int(parts[7]),
                }
    except FileNotFoundError:
        pass
    return stats
