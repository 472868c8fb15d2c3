"""mptcplab: Multipath TCP test networks on one Linux machine.

`from mptcplab import Lab` gives the Python API; heavy modules load lazily so that
`mptcplab --help` and pure commands stay instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Lab", "load_topology", "__version__"]

if TYPE_CHECKING:
    from mptcplab.lab.lab import Lab
    from mptcplab.model.load import load_topology


def __getattr__(name: str) -> Any:
    if name == "Lab":
        from mptcplab.lab.lab import Lab

        return Lab
    if name == "load_topology":
        from mptcplab.model.load import load_topology

        return load_topology
    raise AttributeError(name)
