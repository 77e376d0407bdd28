"""Snapshots: metrics from exact values, and an exact JSON round trip."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError, fields
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krakenstream.core.book import OrderBook, Verdict
from krakenstream.core.events import Precision
from krakenstream.core.snapshot import CSV_COLUMNS, Snapshot
from test_core_checksum import GUIDE_ASKS, GUIDE_BIDS, GUIDE_CHECKSUM


def guide_book() -> OrderBook:
    book = OrderBook("BTC/USD", 10, Precision(1, 8))

    def scale(levels: list[tuple[str, str]]) -> list[tuple[int, int]]:
        return [(int(Decimal(p) * 10), int(Decimal(q) * 10**8)) for p, q in levels]

    book.apply_full_book(scale(GUIDE_BIDS), scale(GUIDE_ASKS), GUIDE_CHECKSUM,
                        "2023-07-30T15:29:58.343415Z")
    return book


def test_metrics() -> None:
    s = Snapshot.from_book(guide_book(), ts=1_690_730_999_000, seq=7)
    assert s.best_bid == Decimal("45283.5") and s.best_ask == Decimal("45285.2")
    assert s.spread == Decimal("1.7")
    assert s.mid == Decimal("45284.35")
    assert s.spread_bps == Decimal("0.3754")
    # microprice leans to the ask: tiny ask size (0.001) against 0.1 on the bid
    assert s.microprice == Decimal("45285.18317")  # price precision + 4 decimals
    assert s.imbalance() is not None and Decimal(-1) <= s.imbalance() <= Decimal(1)  # type: ignore[operator]
    d = s.to_dict()
    assert d["bids"][0] == ["45283.5", "0.10000000"]
    assert d["checksum"] == GUIDE_CHECKSUM and d["time"] == "2023-07-30T15:29:59.000Z"
    assert d["exchange_ts"] == "2023-07-30T15:29:58.343415Z"
    row = s.csv_row()
    assert len(row) == len(CSV_COLUMNS) and row[3] == "45283.5"


def test_from_book_builds_what_the_constructor_builds() -> None:
    """from_book's fast path (no __init__, see _Unfrozen) against Snapshot(...) itself."""
    from krakenstream.core.snapshot import _Unfrozen

    book = guide_book()
    s = Snapshot.from_book(book, ts=1_690_730_999_000, seq=7, gap_before=True, origin="ab12")
    want = Snapshot("BTC/USD", 1_690_730_999_000, "2023-07-30T15:29:58.343415Z", 7, 1, 8,
                    tuple(book.bids()), tuple(book.asks()), GUIDE_CHECKSUM, True, "ab12")
    assert type(s) is Snapshot and _Unfrozen.__slots__ == Snapshot.__slots__
    assert [getattr(s, f.name) for f in fields(Snapshot)] == \
        [getattr(want, f.name) for f in fields(Snapshot)]
    assert s == want and hash(s) == hash(want) and repr(s) == repr(want)
    assert type(s.bids) is tuple and type(s.asks) is tuple and len(s.bids) == 10
    assert pickle.loads(pickle.dumps(s)) == s
    with pytest.raises(FrozenInstanceError):
        s.seq = 8  # type: ignore[misc]
    # the defaults, as the constructor's
    plain = Snapshot.from_book(book, ts=1, seq=1)
    assert plain.gap_before is False and plain.origin == ""
    # the book moves on; the snapshot keeps what it was given
    top = book.bids(1)[0]
    assert book.apply_update([(top[0], top[1] + 1)], [], 0) is Verdict.MISMATCH
    assert s == want and s.bids[0] == top


def test_void_book_cannot_be_snapshotted() -> None:
    book = guide_book()
    book.invalidate()
    with pytest.raises(ValueError):
        Snapshot.from_book(book, ts=0, seq=0)


levels = st.lists(st.tuples(st.integers(1, 10**20), st.integers(0, 10**20)), max_size=30)


@given(st.integers(0, 12), st.integers(0, 12), levels, levels, st.integers(0, 2**45),
       st.booleans())
@pytest.mark.slow
def test_json_round_trip_is_exact(pp: int, qp: int, bids: list, asks: list, ts: int,  # type: ignore[type-arg]
                                  gap: bool) -> None:
    s = Snapshot("A/B", ts, None, 3, pp, qp, tuple(bids), tuple(asks), 123, gap)
    assert Snapshot.from_json(s.to_json()) == s
    assert Snapshot.from_dict(s.to_dict()) == s


@pytest.mark.parametrize("bad", [b"", b"[]", b'{"schema":2}', b'{"pair":"A/B"}',
                                 b'{"schema":1,"pair":"A","ts":"x","seq":1,"price_precision":1,'
                                 b'"qty_precision":1,"bids":[],"asks":[],"checksum":1}'])
def test_malformed_records_raise_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        Snapshot.from_json(bad)


def test_csv_row_from_stored_dict_equals_csv_row() -> None:
    import orjson

    from krakenstream.core.snapshot import csv_row_from_dict

    s = Snapshot.from_book(guide_book(), ts=1_690_730_999_000, seq=7, gap_before=True)
    assert csv_row_from_dict(orjson.loads(s.to_json())) == s.csv_row()
    empty = Snapshot("A/B", 0, None, 1, 2, 2, (), (), 0)
    assert csv_row_from_dict(empty.to_dict()) == empty.csv_row()


@given(st.integers(0, 12), st.integers(-(10**30), 10**30))
def test_parse_fixed_inverts_format_scaled(precision: int, n: int) -> None:
    from krakenstream.core.numbers import format_scaled
    from krakenstream.core.snapshot import parse_fixed

    assert parse_fixed(format_scaled(n, precision), precision) == n
