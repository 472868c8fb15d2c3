"""`mptcplab perf`: MPTCP traffic with per-subflow telemetry, checked end to end.

    from mptcplab.workloads.perf import Server, run_client
    with Server(port=5201, netns="lab-b"):
        r = run_client("10.0.1.2", duration=5, netns="lab-a")
    print(r.ok, r.bits_per_second("c2s"), [sf["bytes_sent"] for sf in r.subflows()])
"""

from mptcplab.workloads.perf.client import run_client
from mptcplab.workloads.perf.common import Params
from mptcplab.workloads.perf.protocol import DEFAULT_PORT
from mptcplab.workloads.perf.result import SCHEMA, SCHEMA_VERSION, PerfResult
from mptcplab.workloads.perf.schedule import SubflowAction
from mptcplab.workloads.perf.schedule import parse as parse_subflow_at
from mptcplab.workloads.perf.server import Server

__all__ = ["DEFAULT_PORT", "SCHEMA", "SCHEMA_VERSION", "Params", "PerfResult", "Server", "SubflowAction",
           "parse_subflow_at", "run_client"]
