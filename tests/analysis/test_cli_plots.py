"""`mptcplab analyze` (table, JSON, plots) and the plot functions."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from mptcplab.analysis import SCHEMA_VERSION, analyze, plots
from mptcplab.cli.analyze import analyze as analyze_cmd

PCAPS = os.path.join(os.path.dirname(__file__), "..", "data", "pcaps")
REINJECT = os.path.join(PCAPS, "reinject-any.pcap")
EVENTS = os.path.join(PCAPS, "events-any.pcap")


def test_json_schema_is_versioned_and_complete() -> None:
    res = CliRunner().invoke(analyze_cmd, [EVENTS, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["schema"] == "mptcplab.analysis" and doc["schema_version"] == SCHEMA_VERSION
    conn = doc["mptcp_connections"][0]
    for key in ("client_key", "server_key", "client_token", "server_token", "client_idsn",
                "server_idsn", "subflows", "events", "data", "reinjections", "fallback"):
        assert key in conn
    assert [s["kind"] for s in conn["subflows"]] == ["initial", "join", "join"]
    assert doc["tcp_connections"][0]["fwd"]["payload_bytes"] > 0


def test_table_output_names_connections_and_events() -> None:
    res = CliRunner().invoke(analyze_cmd, [EVENTS], terminal_width=200)
    assert res.exit_code == 0, res.output
    for word in ("MPTCP connection 0", "ADD_ADDR", "REMOVE_ADDR", "MP_PRIO", "MP_FASTCLOSE",
                 "fallback to TCP", "plain TCP"):
        assert word in res.output


def test_missing_file_is_a_user_error() -> None:
    res = CliRunner().invoke(analyze_cmd, ["/nonexistent.pcap"])
    assert res.exit_code != 0 and "no such file" in str(res.exception)


def test_cli_writes_plots(tmp_path) -> None:
    res = CliRunner().invoke(analyze_cmd, [REINJECT, "--plots", str(tmp_path), "--format", "svg"])
    assert res.exit_code == 0, res.output
    names = sorted(os.listdir(tmp_path))
    assert "conn0-c2s-seq.svg" in names and "conn0-c2s-tput.svg" in names
    assert (tmp_path / "conn0-c2s-seq.svg").read_text().lstrip().startswith("<?xml")


def test_plot_functions_write_png(tmp_path) -> None:
    conn = analyze([REINJECT], series=True).connections[0]
    assert any(r for *_, r in conn.series)  # reinjections are in the series
    plots.sequence_graph(conn, tmp_path / "seq.png")
    plots.throughput(conn, tmp_path / "tput.png")
    for name in ("seq.png", "tput.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
