"""The gate's verdict: a check per question (is the artifact within its latency budget, is it no slower than the
baseline), each decided at a percentile of the repeats, with the figures it rests on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..device.budget import Budget
from ..measure.timing import Stats


@dataclass(frozen=True)
class Check:
    """One decided check (a JUnit testcase, a row of the Markdown table)."""

    name: str
    passed: bool
    message: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class GateResult:
    profile: str
    artifact: Path
    percentile: float
    checks: list[Check]
    stats: Stats
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    settings_from: str = ""  # where the budget came from

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def as_dict(self) -> dict[str, Any]:
        """What `edgenas gate --json` prints."""
        return {"passed": self.passed, "exit_code": self.exit_code, "profile": self.profile,
                "artifact": str(self.artifact), "percentile": self.percentile, "settings_from": self.settings_from,
                "checks": [{"name": c.name, "passed": c.passed, "message": c.message, **c.properties}
                           for c in self.checks],
                "stats": self.stats.as_dict(), "notes": self.notes, "seconds": round(self.seconds, 3)}

    def lines(self) -> list[str]:
        """What `edgenas gate` prints: a line per check, then the notes."""
        return [*(f"{'pass' if c.passed else 'FAIL'}  {c.name:<15} {c.message}" for c in self.checks),
                *(f"note  {note}" for note in self.notes)]


def budget_check(stats: Stats, q: float, budget_ms: float, tolerance: float, source: str) -> Check:
    measured = stats.percentile(q)
    budget = Budget(latency_ms=budget_ms)
    limit = budget.latency_limit(tolerance)
    passed = budget.fits_latency(measured, tolerance)
    verdict = "within" if passed else "over"
    message = (f"p{q:g} {measured:.4f} ms is {verdict} the budget {budget_ms:g} ms + {100 * tolerance:g}% "
               f"tolerance = {limit:.4f} ms (budget from {source})")
    return Check("latency budget", passed, message, {
        "p50_ms": round(stats.p50_ms, 6), f"p{q:g}_ms": round(measured, 6), "spread": round(stats.spread, 6),
        "stable": stats.stable, "repeats": stats.repeats, "budget_ms": budget_ms, "tolerance": tolerance,
        "limit_ms": round(limit, 6), "margin": round((limit - measured) / limit, 6), "budget_source": source})


def regression_check(stats: Stats, base: Stats, q: float, max_regression: float, baseline: Path) -> Check:
    new_ms, base_ms = stats.percentile(q), base.percentile(q)
    ratio, limit = new_ms / base_ms, base_ms * (1 + max_regression)
    passed = new_ms <= limit
    message = (f"p{q:g} {new_ms:.4f} ms is {100 * (ratio - 1):+.1f}% against the baseline's {base_ms:.4f} ms "
               f"({baseline}); allowed {100 * max_regression:+g}%")
    return Check("regression", passed, message, {
        "p50_ms": round(stats.p50_ms, 6), f"p{q:g}_ms": round(new_ms, 6), "spread": round(stats.spread, 6),
        "baseline_p50_ms": round(base.p50_ms, 6), f"baseline_p{q:g}_ms": round(base_ms, 6),
        "baseline_spread": round(base.spread, 6), "ratio": round(ratio, 6), "max_regression": max_regression,
        "limit_ms": round(limit, 6), "margin": round((limit - new_ms) / limit, 6),
        "baseline": str(baseline)})
