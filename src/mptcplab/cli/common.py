"""Pieces every CLI command shares: --lab, --json, the console, JSON output."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

lab_option = click.option(
    "--lab", "lab", metavar="LAB", default=None,
    help="Lab to act on (default: the only running lab).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def emit_json(data: Any) -> None:
    """One JSON document on stdout, for scripts."""
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
