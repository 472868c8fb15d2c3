"""The topology schema: nodes, interfaces, links, switches with VLANs, MPTCP settings.

Pydantic checks each field; `model.check` checks what spans fields (references, subnets,
endpoint counts). Field names are what users write in TOML, so keep them short and plain.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,23}$"
IFNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$"
ENDPOINT_FLAGS = ("signal", "subflow", "backup", "fullmesh", "laminar")
MAX_ENDPOINTS = 8
MAX_LIMIT = 8

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
IfName = Annotated[str, Field(pattern=IFNAME_PATTERN)]


class Strict(BaseModel):
    """Unknown fields are errors: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_mptcp_role(value: str) -> frozenset[str]:
    """'fullmesh', 'signal,backup', 'subflow backup' or 'off' -> the set of endpoint flags.

    An empty set means 'off': the interface gets no endpoint and is kept out of MPTCP.
    """
    words = [w for w in value.replace(",", " ").replace("+", " ").split() if w]
    if words == ["off"]:
        return frozenset()
    if not words:
        raise ValueError("expected endpoint flags like 'subflow', 'signal,backup' or 'off'")
    unknown = [w for w in words if w not in ENDPOINT_FLAGS]
    if unknown:
        raise ValueError(
            f"unknown MPTCP flag {unknown[0]!r}; expected 'off' or a combination of "
            + ", ".join(ENDPOINT_FLAGS)
        )
    flags = frozenset(words)
    if {"fullmesh", "signal"} <= flags:
        raise ValueError("'fullmesh' cannot be combined with 'signal' (the kernel refuses it)")
    if flags == {"backup"}:
        raise ValueError("'backup' alone does nothing; combine it, e.g. 'subflow,backup'")
    return flags


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


class Interface(Strict):
    """A node's interface. Addresses are explicit (CIDR) or assigned from the segment."""

    ipv4: list[ipaddress.IPv4Interface] | None = None
    ipv6: list[ipaddress.IPv6Interface] | None = None
    mptcp: str | None = Field(
        None, description="endpoint flags, e.g. 'subflow', 'signal,backup', 'fullmesh', or 'off'"
    )
    mtu: Annotated[int, Field(ge=68, le=65535)] | None = None

    _list_v4 = field_validator("ipv4", mode="before")(_as_list)
    _list_v6 = field_validator("ipv6", mode="before")(_as_list)

    @field_validator("mptcp")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None:
            parse_mptcp_role(value)
        return value


class Mptcp(Strict):
    """Per-node MPTCP settings; unset fields take the topology-wide [mptcp] value."""

    enabled: bool | None = None
    path_manager: Literal["kernel", "userspace"] | None = None
    scheduler: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,15}$")] | None = None
    subflows: Annotated[int, Field(ge=0, le=MAX_LIMIT)] | None = None
    add_addr_accepted: Annotated[int, Field(ge=0, le=MAX_LIMIT)] | None = None
    endpoints: str | None = Field(None, description="default endpoint flags of the node's interfaces")

    @field_validator("endpoints")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None:
            parse_mptcp_role(value)
        return value


MPTCP_DEFAULTS = Mptcp(
    enabled=True, path_manager="kernel", scheduler=None, subflows=8, add_addr_accepted=8,
    endpoints="subflow",
)


class Node(Strict):
    """A host (does not forward) or a router (forwards IPv4 and IPv6)."""

    kind: Literal["host", "router"] = "host"
    interfaces: dict[IfName, Interface] = Field(default_factory=dict)
    mptcp: Mptcp = Mptcp()
    sysctls: dict[
        Annotated[str, Field(pattern=r"^net(\.[A-Za-z0-9_-]+)+$", max_length=200)],
        Annotated[str, Field(pattern=r"^[A-Za-z0-9 ._:/-]{0,200}$")] | int,
    ] = Field(default_factory=dict)


class Link(Strict):
    """A cable: a veth pair between two node interfaces, written "node:iface"."""

    endpoints: tuple[str, str]
    name: Name | None = None
    ipv4: ipaddress.IPv4Network | None = None
    ipv6: ipaddress.IPv6Network | None = None


class Vlan(Strict):
    """One VLAN of a switch: a broadcast domain, optionally with its own subnets."""

    ipv4: ipaddress.IPv4Network | None = None
    ipv6: ipaddress.IPv6Network | None = None


class Port(Strict):
    """A numbered switch port, in one VLAN, with a node interface plugged in (or empty)."""

    port: Annotated[int, Field(ge=1, le=9999)]
    vlan: Annotated[int, Field(ge=1, le=4094)]
    connect: str | None = None


class Switch(Strict):
    """A switch: one Linux bridge per VLAN; moving a port changes its bridge."""

    vlans: dict[Annotated[int, Field(ge=1, le=4094)], Vlan]
    ports: list[Port] = Field(default_factory=list)


class Addressing(Strict):
    """Automatic addresses: one subnet per link or VLAN, hosts numbered in file order."""

    ipv4_pool: ipaddress.IPv4Network = ipaddress.IPv4Network("10.0.0.0/16")
    ipv6_pool: ipaddress.IPv6Network = ipaddress.IPv6Network("fd00:6d70::/48")
    auto: list[Literal["ipv4", "ipv6"]] = Field(default_factory=lambda: ["ipv4"])
    dual_stack: bool = Field(False, description="shorthand for auto = ['ipv4', 'ipv6']")


class Topology(Strict):
    """The whole lab, as written in a topology file."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")] | None = None
    description: Annotated[str, Field(max_length=2000)] = ""
    addressing: Addressing = Addressing()
    mptcp: Mptcp = MPTCP_DEFAULTS
    nodes: dict[Name, Node]
    links: list[Link] = Field(default_factory=list)
    switches: dict[Name, Switch] = Field(default_factory=dict)

    def node_mptcp(self, node: str) -> Mptcp:
        """Effective MPTCP settings of NODE: its own, else the topology's, else defaults."""
        merged = MPTCP_DEFAULTS.model_dump()
        for layer in (self.mptcp, self.nodes[node].mptcp):
            merged.update({k: v for k, v in layer.model_dump().items() if v is not None})
        return Mptcp(**merged)
