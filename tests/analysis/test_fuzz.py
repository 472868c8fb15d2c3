"""Mutated captures: whatever the bytes, analysis returns a result and never raises."""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mptcplab.analysis import analyze

PCAPS = os.path.join(os.path.dirname(__file__), "..", "data", "pcaps")
with open(os.path.join(PCAPS, "events-e0.pcap"), "rb") as _f:
    SEED = _f.read()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)), max_size=40),
    cut=st.integers(24, len(SEED)),
    splice=st.binary(max_size=64),
)
def test_mutated_capture_never_raises(edits, cut, splice) -> None:
    data = bytearray(SEED)
    for pos, val in edits:
        data[pos] = val
    data = bytes(data[:cut]) + splice
    with tempfile.NamedTemporaryFile(suffix=".pcap") as f:
        f.write(data)
        f.flush()
        result = analyze([f.name, f.name])
        result.to_json()
