"""``store/base.py``: what every history store shares: a query made concrete (or refused),
and a window walked in chunks bounded by rows and by bytes. The stores' behaviour is the
contract suite's (``test_store_contract.py``, on SQLite and Redis)."""

from __future__ import annotations

import pytest

from krakenstream.errors import InputError
from krakenstream.store.base import (
    CHUNK_BYTES,
    FIRST_CHUNK,
    TS_MAX,
    TS_MIN,
    Window,
    paged,
    plan,
    rows_for,
)


def test_a_query_is_made_concrete_within_the_cap() -> None:
    assert plan("X/Y", since=None, until=None, limit=None, order="desc", cap=500) == Window(
        "X/Y", TS_MIN, TS_MAX, 500, "desc")
    assert plan("X/Y", since=10, until=20, limit=5000, order="asc", cap=500) == Window(
        "X/Y", 10, 20, 500, "asc")
    assert plan("X/Y", since=-(2**60), until=2**60, limit=3, order="asc", cap=500) == Window(
        "X/Y", TS_MIN, TS_MAX, 3, "asc")  # clamped to what a timestamp can be
    assert plan("X/Y", since=30, until=20, limit=None, order="asc", cap=500) is None
    assert plan("X/Y", since=None, until=None, limit=0, order="asc", cap=500) is None


@pytest.mark.parametrize("kwargs,match", [
    ({"order": "newest"}, "order must be 'desc' or 'asc'"),
    ({"limit": -1}, "limit must not be negative"),
    ({"since": "10"}, "since must be an integer"),
    ({"until": 1.5}, "until must be an integer"),
    ({"limit": True}, "limit must be an integer"),  # a bool is no count
])
def test_bad_queries_are_input_errors(kwargs: dict[str, object], match: str) -> None:
    query: dict[str, object] = {"since": None, "until": None, "limit": None, "order": "asc"}
    with pytest.raises(InputError, match=match):
        plan("X/Y", **{**query, **kwargs}, cap=10)  # type: ignore[arg-type]


def test_a_window_cut_to_the_caps_floor() -> None:
    w = Window("X/Y", 100, 200, 10, "asc")
    assert w.above(None) is w and w.above(50) is w
    assert w.above(150) == Window("X/Y", 150, 200, 10, "asc")
    assert w.above(201) is None


def test_rows_per_round_trip_follow_the_rows_size() -> None:
    small = [(1, b"x" * 100)] * 10
    big = [(1, b"x" * 10 * CHUNK_BYTES)]
    assert rows_for(small, 500) == min(500, CHUNK_BYTES // 100)
    assert rows_for(big, 500) == 1  # never fewer than one
    assert rows_for([], 500) == 500


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_a_window_is_walked_without_a_row_twice_or_missed(order: str) -> None:
    stored = list(range(1_000, 6_000, 10))  # 500 timestamps
    asked: list[tuple[int, int, int]] = []

    async def fetch(w: Window, lo: int, hi: int, n: int) -> list[tuple[int, bytes]]:
        asked.append((lo, hi, n))
        inside = [t for t in stored if lo <= t <= hi]
        inside = inside if w.order == "asc" else inside[::-1]
        return [(t, b"r" * 50) for t in inside[:n]]

    window = Window("X/Y", 1_500, 5_500, 320, order)  # type: ignore[arg-type]
    seen = [t for rows in [r async for r in paged(window, fetch, chunk=100)] for t, _ in rows]
    expect = [t for t in stored if 1_500 <= t <= 5_500]
    expect = (expect if order == "asc" else expect[::-1])[:320]
    assert seen == expect
    assert asked[0][2] == min(100, FIRST_CHUNK)  # a small first round trip
    assert all(n <= 100 for _, _, n in asked)
