"""Loopback HTTP servers that speak ESP APIs as documented, for tests and benchmarks."""

from .server import FaultPlan, LoopbackServer, RecordedCall, Reply

__all__ = ["FaultPlan", "LoopbackServer", "RecordedCall", "Reply"]
