"""sysctls of a network namespace, read and written through /proc/sys from a thread
that entered it (/proc/sys/net follows the calling thread's namespace)."""

from __future__ import annotations

from mptcplab.errors import KernelError
from mptcplab.kernel import netns


def _path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def write(ns: str | None, key: str, value: str) -> None:
    with netns.enter(ns):
        try:
            with open(_path(key), "w") as fh:
                fh.write(f"{value}\n")
        except FileNotFoundError:
            raise KernelError(f"sysctl {key}: this kernel has no such setting") from None
        except OSError as exc:
            raise KernelError(f"sysctl {key}={value}: {exc.strerror}") from None


def read(ns: str | None, key: str) -> str | None:
    """The value, or None when the kernel has no such sysctl."""
    with netns.enter(ns):
        try:
            with open(_path(key)) as fh:
                return fh.read().strip()
        except FileNotFoundError:
            return None
