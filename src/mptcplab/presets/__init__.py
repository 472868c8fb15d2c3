"""Topologies shipped with mptcplab (TOML)."""
