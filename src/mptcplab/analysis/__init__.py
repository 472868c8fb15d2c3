"""MPTCP pcap analysis: connections, subflows, mappings, events, reinjections.

    from mptcplab.analysis import analyze
    result = analyze(["client-eth0.pcap", "client-eth1.pcap"])
    for conn in result.connections:
        print(conn.index, [s.index for s in conn.subflows], conn.reinjected_bytes)
    result.to_dict()   # the versioned JSON schema (see docs/analysis.md)
"""

from mptcplab.analysis.model import (
    SCHEMA_VERSION,
    AnalysisResult,
    MptcpConnection,
    TcpStream,
)
from mptcplab.analysis.run import analyze

__all__ = ["SCHEMA_VERSION", "AnalysisResult", "MptcpConnection", "TcpStream", "analyze"]
