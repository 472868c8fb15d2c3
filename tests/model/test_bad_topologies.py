"""Malformed topology files: one clear line naming the file and the field, from the parser
and from the CLI (exit 2, no traceback, nothing left on the machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import unique
from model.bad_cases import BAD_TOPOLOGIES
from mptcplab.errors import ConfigError
from mptcplab.kernel import netns
from mptcplab.lab import state as state_mod
from mptcplab.model.load import parse_topology

# the path shown must be the one written in the file: no pydantic-internal segments
KNOWN_BUGS: dict[str, str] = {}


def cases() -> list:  # noqa: ANN201 - pytest params
    out = []
    for case_id, text, path, fragment in BAD_TOPOLOGIES:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case_id])] if case_id in KNOWN_BUGS else []
        out.append(pytest.param(case_id, text, path, fragment, id=case_id, marks=marks))
    return out


def test_there_are_enough_distinct_cases() -> None:
    ids = [c[0] for c in BAD_TOPOLOGIES]
    texts = [c[1] for c in BAD_TOPOLOGIES]
    assert len(ids) >= 20 and len(set(ids)) == len(ids) and len(set(texts)) == len(texts)


@pytest.mark.parametrize(("case_id", "text", "path", "fragment"), cases())
def test_parser_rejects_with_one_line(case_id: str, text: str, path: str, fragment: str) -> None:
    source = f"/some/dir/{case_id}.toml"
    with pytest.raises(ConfigError) as info:
        parse_topology(text, source)
    err = info.value
    message = str(err)
    assert "\n" not in message and message.strip() == message
    assert err.source == source
    assert err.path == path
    expected_start = f"{source}: {path}: " if path else f"{source}: "
    assert message.startswith(expected_start), message
    assert fragment in message
    assert "Traceback" not in message and "pydantic" not in message.lower()


@dataclass
class CliResult:
    lab: str
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, CliResult]]:
    """`mptcplab up FILE --name LAB` for every bad file, run concurrently (module-wide)."""
    directory = tmp_path_factory.mktemp("bad")
    jobs = []
    for case_id, text, _path, _frag in BAD_TOPOLOGIES:
        file = directory / f"{case_id}.toml"
        file.write_text(text)
        jobs.append((case_id, file, unique("bad")))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}

    def run(job: tuple[str, Path, str]) -> tuple[str, CliResult]:
        case_id, file, lab = job
        proc = subprocess.run([sys.executable, "-m", "mptcplab", "up", str(file), "--name", lab],
                              capture_output=True, text=True, timeout=60, env=env)
        return case_id, CliResult(lab, proc.returncode, proc.stdout, proc.stderr)

    before_ns, before_state = set(netns.list_names()), state_names()
    with ThreadPoolExecutor(max_workers=max(4, (os.cpu_count() or 2) * 2)) as pool:
        results = dict(pool.map(run, jobs))
    yield results
    after_ns, after_state = set(netns.list_names()), state_names()
    labs = {r.lab for r in results.values()}
    assert not {ns for ns in after_ns - before_ns if ns.split("-")[0] in labs}
    assert not (after_state - before_state) & labs


def state_names() -> set[str]:
    root = state_mod.STATE_ROOT
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


@pytest.mark.parametrize(("case_id", "text", "path", "fragment"), cases())
def test_cli_up_rejects_cleanly(cli_results: dict[str, CliResult], case_id: str, text: str, path: str,
                                fragment: str) -> None:
    res = cli_results[case_id]
    assert res.returncode == 2, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("mptcplab: error: ")
    assert f"{case_id}.toml: {path}: " in lines[0] if path else f"{case_id}.toml: " in lines[0]
    assert fragment in lines[0]
    assert "Traceback" not in res.stderr + res.stdout
    # nothing of the lab exists: no namespace, no state directory
    assert not [ns for ns in netns.list_names() if ns.startswith(f"{res.lab}-")]
    assert not (state_mod.STATE_ROOT / res.lab).exists()


def test_cli_validate_and_explain_reject_too(tmp_path: Path) -> None:
    file = tmp_path / "dup.toml"
    file.write_text(next(c[1] for c in BAD_TOPOLOGIES if c[0] == "duplicate-address"))
    for cmd in (["validate", str(file)], ["explain", str(file)], ["up", "--dry-run", str(file)]):
        proc = subprocess.run([sys.executable, "-m", "mptcplab", *cmd], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, (cmd, proc.stderr)
        assert proc.stderr.splitlines() == [
            f"mptcplab: error: {file}: nodes.b.interfaces.eth0.ipv4[0]: address 10.1.0.1 is already used by a:eth0"
        ]
        assert proc.stdout == ""


def test_cli_missing_file_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "mptcplab", "up", str(tmp_path / "none.toml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == f"mptcplab: error: {tmp_path / 'none.toml'}: no such file\n"
