"""The perf wire protocol: one listening port, a control connection and data connections.

Every connection opens with a 20-byte hello: magic "MPLP", version, kind (0 control,
1 data), stream index, direction (0 client->server, 1 server->client) and an 8-byte
session id. A control connection (plain TCP, so it never adds subflows or bytes to the
measured paths) then carries JSON lines:

  client -> server  {"type": "hello", "params": {...}}
  server -> client  {"type": "ready", ...}          (after its counter snapshot)
  client opens the data connections, then
  client -> server  {"type": "start"}
  server -> client  {"type": "samples", ...}        (per-subflow samples of server-sent streams)
  server -> client  {"type": "result", ...}         (its bytes + CRC per stream, counters delta)
  client -> server  {"type": "result", ...}         (the client's view, so both ends compare)

A data connection carries the pattern stream of its direction; the sender ends it with
shutdown(SHUT_WR) once every byte is acknowledged, the receiver reads to EOF and closes.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
from typing import Any

from mptcplab.errors import MptcplabError

MAGIC = b"MPLP"
VERSION = 1
KIND_CONTROL = 0
KIND_DATA = 1
C2S = 0
S2C = 1
HELLO = struct.Struct("!4sBBHB3x8s")
DEFAULT_PORT = 5201
MAX_LINE = 16 << 20


class ProtocolError(MptcplabError):
    """The peer said something the perf protocol does not allow."""


def new_session() -> bytes:
    return os.urandom(8)


def pack_hello(kind: int, session: bytes, stream: int = 0, direction: int = 0) -> bytes:
    return HELLO.pack(MAGIC, VERSION, kind, stream, direction, session)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ProtocolError(f"connection closed after {len(buf)} of {n} header bytes")
        buf += chunk
    return bytes(buf)


def read_hello(sock: socket.socket) -> tuple[int, bytes, int, int]:
    """(kind, session, stream, direction) of a new connection."""
    magic, version, kind, stream, direction, session = HELLO.unpack(recv_exact(sock, HELLO.size))
    if magic != MAGIC:
        raise ProtocolError("not an mptcplab perf peer (bad magic)")
    if version != VERSION:
        raise ProtocolError(f"perf protocol version {version}, expected {VERSION}")
    return kind, session, stream, direction


class Control:
    """JSON lines over a stream socket; send() is safe from several threads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._rfile = sock.makefile("rb")
        self._lock = threading.Lock()

    def send(self, msg: dict[str, Any]) -> None:
        data = json.dumps(msg, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            self.sock.sendall(data)

    def recv(self) -> dict[str, Any]:
        line = self._rfile.readline(MAX_LINE)
        if not line:
            raise ProtocolError("control connection closed by the peer")
        try:
            msg = json.loads(line)
        except ValueError as exc:
            raise ProtocolError(f"bad control message: {exc}") from None
        if not isinstance(msg, dict) or "type" not in msg:
            raise ProtocolError("bad control message: no type")
        if msg["type"] == "error":
            raise ProtocolError(f"peer: {msg.get('message', 'error')}")
        return msg

    def expect(self, kind: str) -> dict[str, Any]:
        msg = self.recv()
        if msg["type"] != kind:
            raise ProtocolError(f"expected {kind!r}, got {msg['type']!r}")
        return msg

    def close(self) -> None:
        try:
            self._rfile.close()
        finally:
            self.sock.close()
