"""Errors a user can act on. The CLI prints them as one line, never a traceback."""

from __future__ import annotations


class MptcplabError(Exception):
    """Base class: the message is meant for the user as it is."""

    exit_code = 2


class ConfigError(MptcplabError):
    """A topology or scenario file is invalid: names the file, the field path and what was expected."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source = source
        self.path = path
        self.message = message
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {message}")


class LabError(MptcplabError):
    """Something went wrong while building, using or tearing down a lab."""


class KernelError(MptcplabError):
    """The kernel refused or lacks what was asked for."""
