"""Shared fixtures. Root tests make their own uniquely named namespaces and always remove them."""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator

import pytest

from mptcplab.kernel import netns


def unique(prefix: str = "t") -> str:
    """A short name no parallel run will pick (pid + random)."""
    return f"{prefix}{os.getpid() % 10000}{uuid.uuid4().hex[:4]}"


@pytest.fixture
def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")


class NetnsFactory:
    """Creates namespaces for one test and removes them (and processes in them) afterwards."""

    def __init__(self) -> None:
        self.prefix = unique("t")
        self.names: list[str] = []

    def __call__(self, suffix: str) -> str:
        name = f"{self.prefix}-{suffix}"
        netns.create(name)
        self.names.append(name)
        return name

    def cleanup(self) -> None:
        for name in self.names:
            for pid in netns.pids_in(name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            netns.delete(name)


@pytest.fixture
def netns_factory(require_root: None) -> Iterator[NetnsFactory]:
    factory = NetnsFactory()
    try:
        yield factory
    finally:
        factory.cleanup()
