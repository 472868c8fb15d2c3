"""Pure parts of perf: stream CRC, counters parsing, units, schedule syntax, intervals."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mptcplab.errors import ConfigError
from mptcplab.kernel import counters
from mptcplab.workloads.perf import result as res
from mptcplab.workloads.perf.schedule import parse
from mptcplab.workloads.perf.stream import Pattern, crc32_combine
from mptcplab.workloads.perf.units import parse_rate, parse_size

SMALL = Pattern(11, period=1009, max_chunk=300)
SMALL_BODY = bytes(SMALL.buffer[:SMALL.period])


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=50_000))
def test_pattern_crc_equals_zlib_over_the_stream(n: int) -> None:
    stream = (SMALL_BODY * (n // SMALL.period + 1))[:n]
    assert SMALL.crc(n) == zlib.crc32(stream)


def test_pattern_slices_are_the_stream() -> None:
    stream = SMALL_BODY * 3
    for off in (0, 5, 1008, 1009, 2000):
        assert bytes(SMALL.slice(off, 300)) == stream[off:off + 300]


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_crc32_combine(a: bytes, b: bytes) -> None:
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_large_pattern_crc_is_fast_and_periodic() -> None:
    p = Pattern(3)
    n = 3 * p.period + 12345
    body = bytes(p.buffer[:p.period])
    assert p.crc(n) == zlib.crc32(body * 3 + body[:12345])
    assert p.crc(10**12) != p.crc(10**12 + 1)


NETSTAT = """TcpExt: SyncookiesSent SyncookiesRecv
TcpExt: 0 0
MPTcpExt: MPCapableSYNRX MPJoinSynRx MPTCPRetrans
MPTcpExt: 3 1 7
"""


def test_parse_netstat_and_delta() -> None:
    before = counters.parse_netstat(NETSTAT)
    assert before == {"MPCapableSYNRX": 3, "MPJoinSynRx": 1, "MPTCPRetrans": 7}
    after = {**before, "MPJoinSynRx": 3, "NewOne": 2}
    assert counters.delta(before, after) == {"MPJoinSynRx": 2, "NewOne": 2}
    assert counters.delta(before, after, nonzero=False)["MPTCPRetrans"] == 0
    assert counters.parse_netstat("IpExt: a\nIpExt: 1\n") == {}
    with pytest.raises(ValueError):
        counters.parse_netstat("MPTcpExt: a b\nMPTcpExt: 1\n")


def test_counters_of_this_namespace() -> None:
    values = counters.read()
    assert "MPCapableSYNRX" in values and all(isinstance(v, int) for v in values.values())


def test_units() -> None:
    assert parse_rate("10M") == 10e6 and parse_rate("1.5gbit") == 1.5e9 and parse_rate("500k") == 5e5
    assert parse_size("16M") == 16 << 20 and parse_size("4096") == 4096 and parse_size("1G") == 1 << 30
    for bad in ("10MB", "fast", "-3", "0"):
        with pytest.raises(ConfigError):
            parse_rate(bad)


def test_subflow_at_syntax() -> None:
    a = parse("3s:add:10.0.2.1", 0)
    assert (a.at, a.action, a.local, a.local_id, a.remote) == (3.0, "add", "10.0.2.1", 100, None)
    b = parse("500ms:add:2001:db8::1#7@2001:db8::2", 1)
    assert (b.at, b.local, b.local_id, b.remote) == (0.5, "2001:db8::1", 7, "2001:db8::2")
    c = parse("8:del:10.0.2.1")
    assert (c.at, c.action) == (8.0, "del")
    for bad in ("3s:add", "x:add:10.0.0.1", "3s:move:10.0.0.1", "3s:add:nope", "3s:del:10.0.0.1#3",
                "3s:add:10.0.0.1#0"):
        with pytest.raises(ConfigError):
            parse(bad)


def _sample(t: float, nbytes: int, sfs: list[tuple[int, str, int, int, int]]) -> dict:
    return {"stream": "c2s/0", "t": t, "bytes": nbytes, "token": 5, "source": "full_info", "subflows": [
        {"id": i, "local": [addr, 1000 + i], "remote": ["10.0.1.2", 5201], "state": "ESTABLISHED",
         "bytes_sent": sent, "bytes_acked": sent, "snd_cwnd": 10, "rtt_us": 100, "rttvar_us": 5,
         "total_retrans": retr, "bytes_received": 0}
        for i, addr, _unused, sent, retr in sfs]}


def test_intervals_per_subflow() -> None:
    samples = [
        _sample(0.5, 500, [(1, "10.0.1.1", 0, 500, 0)]),
        _sample(1.0, 1000, [(1, "10.0.1.1", 0, 800, 0), (2, "10.0.2.1", 0, 200, 0)]),
        _sample(2.0, 3000, [(1, "10.0.1.1", 0, 1800, 2), (2, "10.0.2.1", 0, 1200, 0)]),
        _sample(2.02, 3000, [(1, "10.0.1.1", 0, 1800, 2)]),
    ]
    series = res.build_series(samples)
    assert set(series["c2s/0"]["subflows"]) == {"10.0.1.1:1001>10.0.1.2:5201", "10.0.2.1:1002>10.0.1.2:5201"}
    iv = res.intervals(series, 1.0)
    assert [(e["start"], e["end"]) for e in iv] == [(0.0, 1.0), (1.0, 2.02)]
    first, second = iv[0]["streams"][0], iv[1]["streams"][0]
    assert first["bytes"] == 1000 and [s["bytes"] for s in first["subflows"]] == [800, 200]
    assert second["bytes"] == 2000 and [s["bytes"] for s in second["subflows"]] == [1000, 1000]
    assert second["subflows"][0]["retransmits"] == 2
    summaries = res.subflow_summaries(series["c2s/0"], [
        {"kind": "sf_established", "time": 100.9, "token": 5, "saddr": "10.0.2.1", "sport": 1002,
         "daddr": "::ffff:10.0.1.2", "dport": 5201},
        {"kind": "sf_closed", "time": 102.01, "token": 5, "saddr": "10.0.2.1", "sport": 1002,
         "daddr": "10.0.1.2", "dport": 5201},
        {"kind": "closed", "time": 102.5, "token": 5},
        {"kind": "sf_closed", "time": 101.0, "token": 6, "saddr": "10.0.2.1", "sport": 1002,
         "daddr": "10.0.1.2", "dport": 5201},
    ], t0_wall=100.0)
    by_id = {s["id"]: s for s in summaries}
    assert round(by_id[2]["created"], 3) == 0.9 and round(by_id[2]["closed"], 3) == 2.01
    assert by_id[1]["created"] is None and by_id[1]["closed"] == 2.5
    assert by_id[2]["bytes_sent"] == 1200 and by_id[1]["series"]["bytes_sent"] == [500, 800, 1800, 1800]
