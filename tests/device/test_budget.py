import pytest

from edgenas.device.budget import Budget, budget_for
from edgenas.device.profile import load_profile

BOARD = """\
name: board
description: a board with budgets
kind: cpu
target: x86_64
batch: 1
budgets: {{{budgets}}}
measure: {{via: none}}
"""


@pytest.mark.parametrize("budgets, given, expected", [
    ("latency_ms: 5, memory_mb: 2", {}, Budget(5.0, 2.0)),
    ("latency_ms: 5, memory_mb: 2", {"latency_ms": 3.0}, Budget(3.0, 2.0)),
    ("latency_ms: 5", {"memory_mb": 1.5}, Budget(5.0, 1.5)),
    ("", {}, Budget(None, None)),
])
def test_a_given_budget_wins_over_the_profile(write_yaml, budgets, given, expected):
    profile = load_profile(write_yaml("board", BOARD.format(budgets=budgets)))
    assert budget_for(profile, **given) == expected


def test_what_fits():
    b = Budget(latency_ms=2.0, memory_mb=1.0)
    assert b.fits_latency(2.0) and not b.fits_latency(2.01)
    assert b.fits_latency(2.09, tolerance=0.05) and not b.fits_latency(2.11, tolerance=0.05)
    assert b.latency_limit(0.05) == pytest.approx(2.1)
    assert b.fits_memory(1.0) and not b.fits_memory(1.001)
    assert b.as_dict() == {"latency_ms": 2.0, "memory_mb": 1.0}
    none = Budget()
    assert none.fits_latency(1e9) is None and none.fits_memory(1e9) is None and none.as_dict() == {}
