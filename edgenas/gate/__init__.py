"""The CI latency gate: its settings (`config`), the checks it decides (`verdict`), JUnit XML and Markdown
(`reports`), and the run that checks, times and judges an artifact (`run`)."""
from .run import gate
from .verdict import Check, GateResult

__all__ = ["Check", "GateResult", "gate"]
