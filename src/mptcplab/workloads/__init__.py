"""workloads layer (see DESIGN.md)."""
