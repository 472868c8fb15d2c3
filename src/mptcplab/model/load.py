"""Read a topology from a TOML file or a shipped preset; turn every mistake into one line."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mptcplab.errors import ConfigError
from mptcplab.model.resolve import Resolved, resolve
from mptcplab.model.topology import IFNAME_PATTERN, NAME_PATTERN, Topology

UNION_TAGS = {"constrained-str", "str", "int", "float", "bool"}
PATTERN_WORDS = {
    IFNAME_PATTERN: "an interface name of 1-15 characters (letters, digits, '_', '.', '-')",
    NAME_PATTERN: "a name of 1-24 characters (letters, digits, '_', '-'), starting with a letter or digit",
}

DEFAULT_PRESET = "openwrt-vde"


@dataclass
class LoadedTopology:
    """A topology as written (model), as resolved (addresses, routes), and where it came from."""

    source: str
    model: Topology
    resolved: Resolved

    @property
    def default_lab_name(self) -> str:
        return self.model.name or "lab"


def presets() -> dict[str, str]:
    """Preset name -> first line of its description."""
    out = {}
    for entry in sorted(resources.files("mptcplab.presets").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text())
            out[entry.name[:-5]] = str(data.get("description", "")).strip().splitlines()[0:1]
    return {k: (v[0] if v else "") for k, v in out.items()}


def _read(spec: str) -> tuple[str, str]:
    """Text and display name of SPEC: a file path, or the name of a shipped preset."""
    path = Path(spec)
    if path.suffix == ".toml" or path.exists() or "/" in spec:
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except FileNotFoundError:
            raise ConfigError(str(path), "", "no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), "", f"cannot read: {exc}") from None
    preset = resources.files("mptcplab.presets") / f"{spec}.toml"
    if not preset.is_file():
        known = ", ".join(presets())
        raise ConfigError(spec, "", f"no such file, and not a preset (presets: {known})")
    return preset.read_text(encoding="utf-8"), f"preset {spec}"


def format_location(loc: tuple[Any, ...]) -> str:
    """('nodes', 'a', 'interfaces', 'eth0', 'ipv4', 0) -> nodes.a.interfaces.eth0.ipv4[0]"""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("[key]",):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def pydantic_error(source: str, exc: ValidationError) -> ConfigError:
    """The first error as one line; how many more there are, if any."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
    while loc and loc[-1] in UNION_TAGS:  # pydantic names the union member it tried last
        loc = loc[:-1]
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field (check its spelling; see `mptcplab validate --schema`)"
    elif first["type"] == "missing":
        msg = "required field is missing"
    elif first["type"] == "string_pattern_mismatch":
        expected = PATTERN_WORDS.get(first["ctx"]["pattern"], f"text matching {first['ctx']['pattern']}")
        msg = f"{first.get('input')!r}: expected {expected}"
    msg = msg.removeprefix("Value error, ")
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ConfigError(source, format_location(loc), msg)


def parse_topology(text: str, source: str = "<topology>") -> LoadedTopology:
    """Parse, validate and resolve topology TEXT; raises ConfigError with one clear line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"not valid TOML: {exc}") from None
    return build_topology(data, source)


def build_topology(data: dict[str, Any], source: str = "<topology>") -> LoadedTopology:
    """Validate and resolve an already-parsed topology (a dict, as TOML gives it)."""
    try:
        model = Topology.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error(source, exc) from None
    except RecursionError:
        raise ConfigError(source, "", "nested too deeply") from None
    return LoadedTopology(source, model, resolve(model, source))


def load_topology(spec: str | None = None) -> LoadedTopology:
    """Load a topology file or preset (default: the openwrt-vde preset)."""
    text, source = _read(spec or DEFAULT_PRESET)
    loaded = parse_topology(text, source)
    if loaded.model.name is None and source.startswith("preset "):
        loaded.model = loaded.model.model_copy(update={"name": source.removeprefix("preset ")})
        loaded.resolved.name = loaded.model.name
    return loaded
