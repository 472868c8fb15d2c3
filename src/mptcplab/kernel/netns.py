"""Named network namespaces, made the way `ip netns add` makes them.

A namespace is pinned by a bind mount on /run/netns/NAME, so `ip netns exec NAME ...`
works on every lab node. Entering one is per thread (setns), which lets one process
hold netlink sockets in many namespaces at once: a socket stays in the namespace it
was created in.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

from mptcplab.errors import KernelError

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise KernelError(f"{what}: {os.strerror(err)}")


def path(name: str) -> str:
    """The file that pins namespace NAME."""
    return os.path.join(NETNS_DIR, name)


def exists(name: str) -> bool:
    return os.path.exists(path(name))


def list_names() -> list[str]:
    """Every named namespace on the machine (what `ip netns list` shows)."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def _setns_file(file: str) -> None:
    fd = os.open(file, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {file}")
    finally:
        os.close(fd)


def create(name: str) -> None:
    """Create and pin a new, empty network namespace NAME (like `ip netns add`)."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    target = path(name)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
    except FileExistsError:
        raise KernelError(f"network namespace {name!r} already exists") from None
    os.close(fd)
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.unshare(CLONE_NEWNET), f"unshare for namespace {name}")
        try:
            _check(
                _libc.mount(b"/proc/thread-self/ns/net", target.encode(), b"none", MS_BIND, None),
                f"bind mount {target}",
            )
        finally:
            _check(_libc.setns(orig, CLONE_NEWNET), "return to original namespace")
    except BaseException:
        _unlink_quietly(target)
        raise
    finally:
        os.close(orig)


def _unlink_quietly(target: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(target)


def delete(name: str) -> bool:
    """Unpin namespace NAME; the kernel frees it once no process or socket holds it.

    Returns False when it did not exist. Idempotent, so cleanup may call it blindly.
    """
    target = path(name)
    if not os.path.exists(target):
        return False
    _libc.umount2(target.encode(), MNT_DETACH)
    _unlink_quietly(target)
    return True


@contextmanager
def enter(name: str | None) -> Iterator[None]:
    """Run the body of the with-block with this thread inside namespace NAME.

    None means "stay where you are". Sockets created inside stay in NAME afterwards.
    """
    if name is None:
        yield
        return
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns_file(path(name))
        try:
            yield
        finally:
            _check(_libc.setns(orig, CLONE_NEWNET), "return to original namespace")
    finally:
        os.close(orig)


def argv(name: str | None, command: Sequence[str]) -> list[str]:
    """Argument list that runs COMMAND inside namespace NAME.

    nsenter execs the command, so the pid of the started process is the command's own
    pid: it can be stopped by that pid alone.
    """
    if name is None:
        return list(command)
    return ["nsenter", f"--net={path(name)}", "--", *command]


def pids_in(name: str) -> list[int]:
    """Pids of every process whose network namespace is NAME (for cleanup)."""
    try:
        st = os.stat(path(name))
    except FileNotFoundError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ns = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (ns.st_dev, ns.st_ino) == (st.st_dev, st.st_ino):
            found.append(int(entry))
    return found
