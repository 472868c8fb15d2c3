"""Pieces the client and the server share: parameters, sockets, data-connection bookkeeping."""

from __future__ import annotations

import errno
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from mptcplab.errors import ConfigError, KernelError
from mptcplab.kernel import sockopt
from mptcplab.workloads.perf.protocol import C2S, S2C
from mptcplab.workloads.perf.transfer import StreamEnd

DIRECTIONS = {"upload": ("c2s",), "download": ("s2c",), "bidir": ("c2s", "s2c")}
DIR_CODE = {"c2s": C2S, "s2c": S2C}
DIR_NAME = {C2S: "c2s", S2C: "s2c"}


@dataclass
class Params:
    """What the client asks for; sent to the server in the hello."""

    mode: str = "upload"  # upload | download | bidir
    duration: float | None = 10.0
    nbytes: int | None = None
    streams: int = 1
    rate_bps: float | None = None  # per direction, split evenly over the streams
    sample_interval: float = 0.1
    verify: bool = True
    congestion: str | None = None
    seed: int = 0
    mptcp: bool = True

    def validate(self) -> Params:
        if self.mode not in DIRECTIONS:
            raise ConfigError("perf", "mode", f"{self.mode!r}: expected upload, download or bidir")
        if (self.duration is None) == (self.nbytes is None):
            raise ConfigError("perf", "duration/bytes", "give exactly one of a duration or a byte count")
        if self.duration is not None and not 0 < self.duration <= 86400:
            raise ConfigError("perf", "duration", f"{self.duration}: expected 0 < seconds <= 86400")
        if self.nbytes is not None and self.nbytes <= 0:
            raise ConfigError("perf", "bytes", f"{self.nbytes}: expected a positive byte count")
        if not 1 <= self.streams <= 128:
            raise ConfigError("perf", "parallel", f"{self.streams}: expected 1..128 streams")
        if self.rate_bps is not None and self.rate_bps <= 0:
            raise ConfigError("perf", "rate", f"{self.rate_bps}: expected a positive rate")
        if not 0 <= self.sample_interval <= 60:
            raise ConfigError("perf", "sample-interval", f"{self.sample_interval}: expected 0..60 s (0: off)")
        return self

    @property
    def directions(self) -> tuple[str, ...]:
        return DIRECTIONS[self.mode]

    @property
    def stream_rate(self) -> float | None:
        return self.rate_bps / self.streams if self.rate_bps else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Params:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known).validate()


@dataclass
class DataConn:
    """One data connection as seen by one end."""

    sock: socket.socket
    key: str
    direction: str
    end: StreamEnd
    token: int | None = None
    mptcp: bool | None = None
    local: tuple[str, int] = ("", 0)
    remote: tuple[str, int] = ("", 0)
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> None:
        """Record addresses, TCP_IS_MPTCP and the local token while the socket is open."""
        self.local = _ep(self.sock.getsockname())
        self.remote = _ep(self.sock.getpeername())
        self.mptcp = sockopt.is_mptcp(self.sock)
        if self.sock.proto == socket.IPPROTO_MPTCP:
            try:
                self.token = sockopt.mptcp_info(self.sock).token or None
            except OSError:
                self.token = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.end.to_dict(), "direction": self.direction, "token": self.token,
                "mptcp": self.mptcp, "local": list(self.local), "remote": list(self.remote)}


def _ep(addr: tuple) -> tuple[str, int]:
    host = str(addr[0])
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return host, int(addr[1])


def stream_socket(family: int, mptcp: bool, congestion: str | None = None) -> socket.socket:
    """A stream socket, MPTCP unless MPTCP is False; a clear error when the kernel lacks MPTCP."""
    proto = socket.IPPROTO_MPTCP if mptcp else socket.IPPROTO_TCP
    try:
        sock = socket.socket(family, socket.SOCK_STREAM, proto)
    except OSError as exc:
        if mptcp and exc.errno in (errno.EPROTONOSUPPORT, errno.ENOPROTOOPT, errno.EINVAL):
            raise KernelError("MPTCP sockets are not available here (net.mptcp.enabled=0 or no "
                              "CONFIG_MPTCP); use --tcp for plain TCP") from None
        raise
    if congestion:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, congestion.encode())
        except OSError as exc:
            sock.close()
            raise KernelError(f"congestion control {congestion!r}: {exc.strerror} "
                              "(see /proc/sys/net/ipv4/tcp_available_congestion_control)") from None
    return sock
