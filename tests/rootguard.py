"""Root-namespace guard: snapshot what a lab must never change in the root network
namespace, and fail the pytest session if it changed.

Enable in tests/conftest.py with `pytest_plugins = ["rootguard"]` (tests/ is on sys.path),
or for one run with `pytest -p rootguard`. Disable for a run with MPTCPLAB_ROOTGUARD=0.
What is compared: `ip -j addr`, `ip -j -4/-6 route show table all`, `ip -j -4/-6 rule`,
`ip -j mptcp endpoint`, `ip mptcp limits`, `nft -j list ruleset`, `sysctl -a -r '^net\\.'`,
with values the kernel changes on its own (counters, lifetimes, random keys) left out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import Any

import pytest

# sysctls whose value the kernel changes by itself. Found empirically: snapshots of this
# machine idle and across lab cycles differ in none of the ~1050 net.* keys; the conntrack
# entry count moves with any root traffic once nf_conntrack is loaded.
VOLATILE_SYSCTLS = re.compile(r"^net\.netfilter\.nf_conntrack_count$")
# sysctls that appear, or lists that grow, when a kernel module loads (a lab inside a
# namespace may load nf_conntrack, sch_*, an MPTCP scheduler...): not a change of settings
MODULE_SYSCTLS = re.compile(r"^net\.(netfilter\..*|nf_conntrack_max|.*available.*)$")
# keys that change by themselves in iproute2/nft JSON (lifetimes, counters, timers)
VOLATILE_KEYS = {"valid_life_time", "preferred_life_time", "expires", "packets", "bytes", "used",
                 "updated", "age", "stats64", "stats"}


def _run(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return f"<{' '.join(argv)} failed: {proc.stderr.strip()}>"
    return proc.stdout


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _json(argv: list[str]) -> Any:
    out = _run(argv)
    if out.startswith("<"):
        return out
    return _strip(json.loads(out)) if out.strip() else []


def sysctls() -> dict[str, str]:
    """`sysctl -a` of the root namespace under net., without self-changing values."""
    out = {}
    for line in _run(["sysctl", "-a", "--pattern", r"^net\."]).splitlines():
        key, sep, value = line.partition(" = ")
        if sep and not VOLATILE_SYSCTLS.match(key):
            out[key] = value
    return out


def snapshot() -> dict[str, Any]:
    """What a lab must never change in the root network namespace (read from this process's
    namespace: run it from the root namespace)."""
    snap: dict[str, Any] = {
        "addr": _json(["ip", "-j", "addr"]),
        "route4": _json(["ip", "-j", "-4", "route", "show", "table", "all"]),
        "route6": _json(["ip", "-j", "-6", "route", "show", "table", "all"]),
        "rule4": _json(["ip", "-j", "-4", "rule"]),
        "rule6": _json(["ip", "-j", "-6", "rule"]),
        "mptcp_endpoints": _json(["ip", "-j", "mptcp", "endpoint"]),
        "mptcp_limits": _run(["ip", "mptcp", "limits"]).split(),
        "sysctl": sysctls(),
    }
    if shutil.which("nft"):
        snap["nft"] = _json(["nft", "-j", "list", "ruleset"])
    return snap


def diff(before: dict[str, Any], after: dict[str, Any], limit: int = 20) -> list[str]:
    """Human lines naming what changed between two snapshots (empty: nothing)."""
    lines: list[str] = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        if key == "sysctl":
            for name in sorted(set(a) | set(b)):
                if MODULE_SYSCTLS.match(name) and (name not in a or name not in b or "available" in name):
                    continue
                if a.get(name) != b.get(name):
                    lines.append(f"sysctl {name}: {a.get(name)!r} -> {b.get(name)!r}")
        elif isinstance(a, list) and isinstance(b, list):
            gone = [x for x in a if x not in b]
            new = [x for x in b if x not in a]
            lines += [f"{key}: removed {json.dumps(x, sort_keys=True)[:300]}" for x in gone]
            lines += [f"{key}: added {json.dumps(x, sort_keys=True)[:300]}" for x in new]
            if not gone and not new:
                lines.append(f"{key}: same entries, different order or content")
        else:
            lines.append(f"{key}: {str(a)[:200]} -> {str(b)[:200]}")
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


def _enabled(config: pytest.Config) -> bool:
    return os.geteuid() == 0 and os.environ.get("MPTCPLAB_ROOTGUARD", "1") != "0"


_KEY = pytest.StashKey[dict]()


def pytest_sessionstart(session: pytest.Session) -> None:
    if _enabled(session.config):
        session.config.stash[_KEY] = snapshot()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_KEY, None)
    if before is None:
        return
    changes = diff(before, snapshot())
    if changes:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "rootguard: the root network namespace changed during the session:\n  " + "\n  ".join(changes)
        if reporter is not None:
            reporter.write_line(text, red=True, bold=True)
        else:
            print(text)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
