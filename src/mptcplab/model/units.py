"""Units people write in topology files: "10mbit", "20ms", "1%", "1500".

Each parser returns plain numbers in base units (bits/s, seconds, fraction) and raises
ValueError with what was expected; the model turns that into a ConfigError naming the field.
"""

from __future__ import annotations

import re

_NUM = r"(\d+(?:\.\d+)?)"
_RATE_RE = re.compile(rf"^{_NUM}\s*([kmgt]?)(bit|bps|b)?(?:/s)?$", re.IGNORECASE)
_TIME_RE = re.compile(rf"^{_NUM}\s*(us|µs|ms|s)$", re.IGNORECASE)
_PERCENT_RE = re.compile(rf"^{_NUM}\s*%$")
_RATE_MULT = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_TIME_MULT = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
MAX_RATE = 10**12  # 1 Tbit/s: more is a typo


def parse_rate(value: str | int) -> int:
    """Bits per second from "10mbit", "1.5gbit", "100kbit", "10mbps" (bytes!) or an int."""
    if isinstance(value, bool):
        raise ValueError("expected a rate like '10mbit'")
    if isinstance(value, int):
        bits = value
    else:
        m = _RATE_RE.match(value.strip())
        if not m:
            raise ValueError(f"expected a rate like '10mbit', '1gbit' or '500kbit', got {value!r}")
        number, prefix, unit = m.groups()
        bits = float(number) * _RATE_MULT[prefix.lower()]
        if (unit or "").lower() == "bps":  # tc convention: bps = bytes per second
            bits *= 8
        bits = int(round(bits))
    if not 0 < bits <= MAX_RATE:
        raise ValueError(f"expected a rate between 1bit and 1tbit, got {value!r}")
    return bits


def parse_time(value: str | int | float) -> float:
    """Seconds from "20ms", "500us", "1.5s" (a bare number means milliseconds)."""
    if isinstance(value, bool):
        raise ValueError("expected a time like '20ms'")
    if isinstance(value, int | float):
        seconds = float(value) / 1000.0
    else:
        m = _TIME_RE.match(value.strip())
        if not m:
            raise ValueError(f"expected a time like '20ms', '500us' or '1s', got {value!r}")
        seconds = float(m.group(1)) * _TIME_MULT[m.group(2).lower()]
    if not 0 <= seconds <= 3600:
        raise ValueError(f"expected a time between 0 and 3600s, got {value!r}")
    return seconds


def parse_percent(value: str | int | float) -> float:
    """A fraction 0..1 from "1%", "0.5%" (a bare number is a percentage too)."""
    if isinstance(value, bool):
        raise ValueError("expected a percentage like '1%'")
    if isinstance(value, int | float):
        pct = float(value)
    else:
        m = _PERCENT_RE.match(value.strip())
        if not m:
            raise ValueError(f"expected a percentage like '1%' or '0.5%', got {value!r}")
        pct = float(m.group(1))
    if not 0 <= pct <= 100:
        raise ValueError(f"expected a percentage between 0% and 100%, got {value!r}")
    return pct / 100.0


def format_rate(bits: float) -> str:
    """Human form of a rate, as tc writes it: 10Mbit, 1.5Gbit."""
    for unit, mult in (("Tbit", 1e12), ("Gbit", 1e9), ("Mbit", 1e6), ("Kbit", 1e3)):
        if bits >= mult:
            return f"{bits / mult:g}{unit}"
    return f"{bits:g}bit"


def format_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:g}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:g}ms"
    return f"{seconds * 1e6:g}us"
