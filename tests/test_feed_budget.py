"""The pool's connection budget (feed/budget.py): spaced, and capped per window."""

from __future__ import annotations

import pytest

from krakenstream.errors import InputError
from krakenstream.feed.budget import ConnectBudget


def test_attempts_are_spaced() -> None:
    b = ConnectBudget(100, spacing=0.5)
    # fifteen connections cut at once go one after the other, half a second apart
    assert [b.reserve(10.0) for _ in range(4)] == [10.0, 10.5, 11.0, 11.5]
    assert b.reserve(20.0) == 20.0  # later: at once
    assert b.used(20.0) == 5


def test_no_more_than_the_limit_in_any_window() -> None:
    b = ConnectBudget(3, window=600.0)
    at = [b.reserve(0.0) for _ in range(5)]
    assert at == [0.0, 0.0, 0.0, 600.0, 600.0]
    # whatever the moment asked, any 600 s holds at most three attempts
    more = [b.reserve(t) for t in (700.0, 900.0, 1300.0)]
    every = at + more
    for i, t in enumerate(every):
        assert sum(1 for u in every if t - 600.0 < u <= t) <= 3, (i, t)
    assert more == [700.0, 1200.0, 1300.0]


def test_a_flapping_pool_stays_under_krakens_ban() -> None:
    """Twenty connections cut every 30 s for an hour: never 150 in ten minutes."""
    b = ConnectBudget(60, spacing=0.25)
    attempts = [b.reserve(float(t)) for t in range(0, 3600, 30) for _ in range(20)]
    for t in attempts:
        assert sum(1 for u in attempts if t - 600.0 < u <= t) <= 60


def test_bad_budgets_are_refused() -> None:
    for kwargs in ({"limit": 0}, {"limit": 1, "spacing": -1.0}, {"limit": 1, "window": 0.0}):
        with pytest.raises(InputError):
            ConnectBudget(**kwargs)  # type: ignore[arg-type]
