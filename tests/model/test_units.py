"""Units people write in topology files: rates, times, percentages, and their human form."""

from __future__ import annotations

import pytest

from mptcplab.model.units import format_rate, format_time, parse_percent, parse_rate, parse_time


@pytest.mark.parametrize(
    ("text", "bits"),
    [
        ("10mbit", 10_000_000),
        ("10Mbit", 10_000_000),
        ("1.5gbit", 1_500_000_000),
        ("100kbit", 100_000),
        ("500 kbit", 500_000),
        ("10mbps", 80_000_000),  # tc convention: bps means bytes per second
        ("1gbit/s", 1_000_000_000),
        ("64000", 64_000),
        (2_000_000, 2_000_000),
        ("1tbit", 10**12),
    ],
)
def test_parse_rate(text: str | int, bits: int) -> None:
    assert parse_rate(text) == bits


@pytest.mark.parametrize("bad", ["", "fast", "10 mbits", "-1mbit", "0", 0, "2tbit", True, "10xbit"])
def test_parse_rate_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="expected a rate"):
        parse_rate(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("20ms", 0.020), ("500us", 0.0005), ("500µs", 0.0005), ("1.5s", 1.5), ("0ms", 0.0),
     (20, 0.020), (2.5, 0.0025), ("3600s", 3600.0)],
)
def test_parse_time(text: str | float, seconds: float) -> None:
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["20", "20 min", "ms", "3601s", -5, False, "1e3ms"])
def test_parse_time_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="expected a time"):
        parse_time(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "fraction"), [("1%", 0.01), ("0.5%", 0.005), ("100%", 1.0), ("0%", 0.0), (25, 0.25), (0.1, 0.001)]
)
def test_parse_percent(text: str | float, fraction: float) -> None:
    assert parse_percent(text) == pytest.approx(fraction)


@pytest.mark.parametrize("bad", ["1", "101%", "%", "ten%", -1, True])
def test_parse_percent_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="expected a percentage"):
        parse_percent(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bits", "text"),
    [(10_000_000, "10Mbit"), (1_500_000_000, "1.5Gbit"), (100_000, "100Kbit"), (999, "999bit"), (10**12, "1Tbit")],
)
def test_format_rate(bits: int, text: str) -> None:
    assert format_rate(bits) == text


@pytest.mark.parametrize(("seconds", "text"), [(0.02, "20ms"), (1.5, "1.5s"), (0.0005, "500us"), (2, "2s")])
def test_format_time(seconds: float, text: str) -> None:
    assert format_time(seconds) == text


@pytest.mark.parametrize("text", ["10mbit", "1.5gbit", "250kbit", "3gbit"])
def test_rate_round_trip(text: str) -> None:
    assert parse_rate(format_rate(parse_rate(text))) == parse_rate(text)
