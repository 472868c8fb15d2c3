"""Regenerate the committed captures (needs root): python3 tests/data/pcaps/generate.py

Runs tests/analysis/scenarios.py in fresh namespaces and writes the pcaps here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))


from analysis import scenarios  # noqa: E402
from mptcplab.kernel import netns  # noqa: E402


def main() -> None:
    for name in sys.argv[1:] or ["events", "reinject", "ipv6"]:
        tag = uuid.uuid4().hex[:6]
        c, s = f"gen{tag}-c", f"gen{tag}-s"
        netns.create(c)
        netns.create(s)
        try:
            files = getattr(scenarios, name)(c, s, HERE)
            for f in files:
                print(f, os.path.getsize(f))
        finally:
            for ns in (c, s):
                for pid in netns.pids_in(ns):
                    if pid != os.getpid():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                netns.delete(ns)


if __name__ == "__main__":
    main()
