"""Benchmark: `up` + `down` of the lab engine, three ways, on the seed preset and on a
generated 100-node chain (2 hosts at the ends, 98 routers between).

    sudo python benchmarks/bench_lab.py [--runs 5] [--big-runs 3] [--nodes 100]

1. whole commands: `python -m mptcplab up ... && python -m mptcplab down --lab ...`
2. the Python API in one process (interpreter start excluded): Lab(...).up(); .down()
3. the equivalent plain script: the `up --dry-run` output run with bash, then
   `ip netns del` for each namespace (also run with bash)

Prints medians with ratios, and the cost of `mptcplab --help` and `up --dry-run`.
Not a test: it only measures. Every lab it builds is removed, also on failure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mptcplab.model.generate import chain

SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, SRC)
ENV = {**os.environ, "PYTHONPATH": SRC}


def mptcplab(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "mptcplab", *args], env=ENV, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def purge(lab: str) -> None:
    """Remove whatever is left of LAB (after a failed run)."""
    from mptcplab.kernel import netns
    from mptcplab.lab import state as state_mod
    from mptcplab.lab.teardown import destroy

    if (state_mod.STATE_ROOT / lab / "state.json").exists():
        destroy(state_mod.load(lab))
    for ns in netns.list_names():
        if ns.startswith(f"{lab}-"):
            netns.delete(ns)


class Bench:
    def __init__(self, spec: str, runs: int) -> None:
        self.spec = spec
        self.runs = runs
        self.seq = 0

    def name(self) -> str:
        self.seq += 1
        return f"bl{os.getpid() % 10000}{self.seq}"

    def cli(self) -> float:
        lab = self.name()
        try:
            return timed(lambda: (mptcplab("up", self.spec, "--name", lab), mptcplab("down", "--lab", lab)))
        finally:
            purge(lab)

    def api(self) -> float:
        from mptcplab import Lab

        lab = self.name()
        try:
            return timed(lambda: Lab(self.spec, name=lab).up().down())
        finally:
            purge(lab)

    def script(self) -> float:
        from mptcplab.lab.lab import Lab, kernel_facts
        from mptcplab.plan import ops as o

        lab = self.name()
        plan = Lab(self.spec, name=lab).plan(kernel_facts())
        up = o.script(plan)
        down = "#!/bin/bash\n" + "".join(f"ip netns del {op.ns}\n" for op in plan if isinstance(op, o.CreateNetns))
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "up.sh").write_text(up)
            (Path(tmp) / "down.sh").write_text(down)
            try:
                return timed(lambda: (subprocess.run(["bash", f"{tmp}/up.sh"], check=True),
                                      subprocess.run(["bash", f"{tmp}/down.sh"], check=True)))
            finally:
                purge(lab)

    def median(self, way: Callable[[], float]) -> float:
        way()  # warm-up: page cache, modules, first namespace
        return statistics.median(way() for _ in range(self.runs))


def median_cmd(argv: list[str], runs: int) -> float:
    def once() -> float:
        return timed(lambda: subprocess.run(argv, env=ENV, check=True, stdout=subprocess.DEVNULL))

    once()
    return statistics.median(once() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure for the preset")
    parser.add_argument("--big-runs", type=int, default=3, help="runs per figure for the chain")
    parser.add_argument("--nodes", type=int, default=100, help="nodes in the generated chain")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_lab: needs root (it builds network namespaces)")
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / f"chain{args.nodes}.toml"
        big.write_text(chain(args.nodes))
        rows = []
        for label, spec, runs in (("openwrt-vde (3 ns)", "openwrt-vde", args.runs),
                                  (f"chain of {args.nodes} ({args.nodes} ns)", str(big), args.big_runs)):
            bench = Bench(spec, runs)
            rows.append((label, bench.median(bench.cli), bench.median(bench.api), bench.median(bench.script)))
        helptime = median_cmd([sys.executable, "-m", "mptcplab", "--help"], args.runs)
        dry = median_cmd([sys.executable, "-m", "mptcplab", "up", "openwrt-vde", "--dry-run"], args.runs)
        dry_big = median_cmd([sys.executable, "-m", "mptcplab", "up", str(big), "--dry-run"], args.big_runs)
    print(f"up + down, median of {args.runs} (preset) / {args.big_runs} (chain) runs after one warm-up; "
          f"kernel {os.uname().release}, {os.cpu_count()} CPUs")
    print()
    print("| lab | whole commands | Python API | plain ip script | script / API | commands / script |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, cli, api, script in rows:
        print(f"| {label} | {cli:.3f} s | {api:.3f} s | {script:.3f} s | {script / api:.1f}x | {cli / script:.2f}x |")
    print()
    print("| command | median |")
    print("|---|---:|")
    print(f"| `mptcplab --help` | {helptime:.3f} s |")
    print(f"| `mptcplab up openwrt-vde --dry-run` | {dry:.3f} s |")
    print(f"| `mptcplab up chain{args.nodes}.toml --dry-run` | {dry_big:.3f} s |")
    pre, chain_row = rows[0], rows[1]
    print()
    print("goals:")
    print(f"  preset up+down as whole commands < 1 s: {pre[1]:.3f} s -> {'met' if pre[1] < 1 else 'MISSED'}")
    print(f"  API no slower than the script (preset): {pre[2]:.3f} vs {pre[3]:.3f} s -> "
          f"{'met' if pre[2] <= pre[3] else 'MISSED'}")
    print(f"  {args.nodes}-node lab >= 3x faster than its script (API): {chain_row[3] / chain_row[2]:.1f}x -> "
          f"{'met' if chain_row[3] >= 3 * chain_row[2] else 'MISSED'}")


if __name__ == "__main__":
    main()
