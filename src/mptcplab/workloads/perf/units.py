"""Rates and sizes on the command line: "100M" / "1.5gbit" bits per second, "16M" bytes."""

from __future__ import annotations

import re

from mptcplab.errors import ConfigError

_NUM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(bit|bps|b)?(?:/s)?\s*$", re.IGNORECASE)
_SCALE = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_rate(text: str) -> float:
    """Bits per second: decimal prefixes like iperf3 ("10M", "10mbit", "1.5G", "500k")."""
    m = _NUM.match(text)
    if not m or m.group(4) == "B":  # "B" would be bytes: refuse rather than guess
        raise ConfigError("--rate", text, "expected a rate like 10M, 100mbit or 1.5G (bits per second)")
    value = float(m.group(1)) * 1000 ** _SCALE[m.group(2).lower()]
    if value <= 0:
        raise ConfigError("--rate", text, "must be positive")
    return value


def parse_size(text: str) -> int:
    """Bytes with binary prefixes like iperf3's -n ("16M" = 16 MiB, "1G", "100K", "4096")."""
    m = _NUM.match(text)
    if not m or (m.group(4) or "").lower() not in ("", "b"):
        raise ConfigError("--bytes", text, "expected a size like 16M, 1G or 4096 (bytes)")
    value = int(float(m.group(1)) * 1024 ** _SCALE[m.group(2).lower()])
    if value <= 0:
        raise ConfigError("--bytes", text, "must be positive")
    return value
