"""The latency and memory budgets of a deployment: where they come from and what fits them.

A budget given for one run (`--latency-ms`, `--memory-mb`, a gate setting) wins over the profile's
`budgets:` section. Whether a latency fits is always judged the same way: the measured or predicted latency
against the budget, with an optional tolerance for noise (the CI gate's).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .profile import Profile


@dataclass(frozen=True)
class Budget:
    latency_ms: float | None = None
    memory_mb: float | None = None

    def fits_latency(self, ms: float, tolerance: float = 0.0) -> bool | None:
        """Whether `ms` is within the latency budget plus `tolerance` (a fraction); None without a budget."""
        return None if self.latency_ms is None else ms <= self.latency_limit(tolerance)

    def latency_limit(self, tolerance: float = 0.0) -> float:
        return self.latency_ms * (1 + tolerance)

    def fits_memory(self, mb: float) -> bool | None:
        """Whether `mb` (weights + peak activations) is within the memory budget; None without a budget."""
        return None if self.memory_mb is None else mb <= self.memory_mb

    def as_dict(self) -> dict[str, Any]:
        """The budgets that are set, as the report lists them."""
        return {k: v for k, v in (("latency_ms", self.latency_ms), ("memory_mb", self.memory_mb)) if v is not None}


def budget_for(profile: Profile, latency_ms: float | None = None, memory_mb: float | None = None) -> Budget:
    """The budgets of a run on `profile`: those given, else the profile's."""
    return Budget(latency_ms or profile.budgets.get("latency_ms"), memory_mb or profile.budgets.get("memory_mb"))
