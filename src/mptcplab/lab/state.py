"""Lab state under /run/mptcplab/<lab>/: what exists, so that `down` and `clean` can undo it.

The state file is written before anything is created and rewritten (atomically) as the
lab grows, so even a SIGKILL in the middle of `up` leaves a record `clean` can act on.
/run is a tmpfs: a reboot takes the namespaces and the state with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mptcplab.errors import LabError

STATE_ROOT = Path(os.environ.get("MPTCPLAB_STATE_DIR", "/run/mptcplab"))
LAB_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def write_json_atomic(target: Path, data: Any) -> None:
    """Write JSON so that a reader (or a crash) never sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@dataclass
class ProcessRecord:
    """A background process the lab started: stopped by this pid, checked by its start time."""

    pid: int
    starttime: int
    role: str
    node: str | None
    argv: list[str]


@dataclass
class LabState:
    name: str
    source: str = ""
    topology: dict[str, Any] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    complete: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return STATE_ROOT / self.name

    def save(self) -> None:
        write_json_atomic(self.directory / "state.json", asdict(self))

    def netns(self, node: str) -> str:
        """The namespace of NODE in this lab: `<lab>-<node>`."""
        nodes = self.topology.get("nodes", {})
        switches = self.topology.get("switches", {})
        if node not in nodes and node not in switches:
            known = ", ".join(sorted([*nodes, *switches])) or "none"
            raise LabError(f"lab {self.name!r} has no node {node!r} (nodes: {known})")
        return netns_name(self.name, node)


    def address(self, node: str, family: int = 4) -> str:
        """NODE's first address of FAMILY on an MPTCP interface (else on any), no prefix."""
        self.netns(node)
        ifaces = self.topology["nodes"][node]["interfaces"] if node in self.topology["nodes"] else []
        for mptcp_only in (True, False):
            for iface in ifaces:
                if mptcp_only and not iface["flags"]:
                    continue
                for cidr in iface["addresses"]:
                    addr = cidr.split("/")[0]
                    if (":" in addr) == (family == 6):
                        return addr
        raise LabError(f"node {node!r} of lab {self.name!r} has no IPv{family} address")


def netns_name(lab: str, node: str) -> str:
    return f"{lab}-{node}"


def check_lab_name(name: str) -> str:
    if not LAB_NAME_RE.match(name):
        raise LabError(
            f"lab name {name!r}: expected 1-32 characters of a-z, 0-9, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def load(name: str) -> LabState:
    path = STATE_ROOT / check_lab_name(name) / "state.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(f"no lab named {name!r} is running (see `mptcplab list`)") from None
    except (OSError, ValueError) as exc:
        raise LabError(f"state of lab {name!r} is unreadable ({path}: {exc}); run `mptcplab clean`") from None
    data["processes"] = [ProcessRecord(**p) for p in data.get("processes", [])]
    return LabState(**data)


def names() -> list[str]:
    """Names of all labs that have state on this machine (complete or not)."""
    if not STATE_ROOT.is_dir():
        return []
    return sorted(p.name for p in STATE_ROOT.iterdir() if (p / "state.json").exists())


def resolve(name: str | None) -> LabState:
    """The lab a command acts on: the named one, or the only one running."""
    if name is not None:
        return load(name)
    running = names()
    if not running:
        raise LabError("no lab is running; start one with `mptcplab up`")
    if len(running) > 1:
        raise LabError(f"several labs are running ({', '.join(running)}); choose one with --lab")
    return load(running[0])
