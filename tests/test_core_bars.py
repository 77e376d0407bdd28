"""Bars per interval (core/bars.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krakenstream.core.bars import (
    BAR_COLUMNS,
    EVERY_INPUT_PATTERN,
    MAX_EVERY_MS,
    BarBuilder,
    bar_start,
    bars,
    parse_every,
)
from krakenstream.core.snapshot import Snapshot
from krakenstream.errors import InputError

T0 = 1_700_000_040_000  # 22:14:00Z, a minute boundary


def snap(ts: int, bid: int, ask: int, bq: int = 100, aq: int = 100) -> Snapshot:
    return Snapshot(pair="ETH/USD", ts=ts, exchange_ts=None, seq=0, price_precision=2,
                    qty_precision=2, bids=((bid, bq),), asks=((ask, aq),), checksum=0)


@pytest.mark.parametrize(("text", "ms"), [("1m", 60_000), ("5m", 300_000), ("1h", 3_600_000),
                                          ("30s", 30_000), ("1d", 86_400_000), (" 15M ", 900_000)])
def test_parse_every(text: str, ms: int) -> None:
    assert parse_every(text) == ms


@pytest.mark.parametrize("text", ["", "m", "0m", "1w", "1.5m", "-1m", "8d", "1 m"])
def test_parse_every_refuses(text: str) -> None:
    with pytest.raises(InputError):
        parse_every(text)


def test_bars_are_aligned_on_the_epoch() -> None:
    assert bar_start(T0 + 59_999, 60_000) == T0
    assert bar_start(T0 + 60_000, 60_000) == T0 + 60_000


def test_ohlc_spread_and_imbalance_are_exact() -> None:
    series = [
        snap(T0, 100_00, 100_02),            # mid 100.010, spread 0.02
        snap(T0 + 1000, 100_05, 100_06),     # mid 100.055 (high), spread 0.01
        snap(T0 + 2000, 99_90, 99_93, 300, 100),  # mid 99.915 (low), spread 0.03, imb 0.5
        snap(T0 + 60_000, 101_00, 101_01),   # the next minute
    ]
    out = list(bars(((s, False) for s in series), 60_000))
    assert [b.start for b in out] == [T0, T0 + 60_000]
    b = out[0]
    assert b.snapshots == 3 and not b.gap
    assert (b.open, b.high, b.low, b.close) == (
        Decimal("100.010"), Decimal("100.055"), Decimal("99.915"), Decimal("99.915"))
    assert b.spread_max == Decimal("0.03")
    assert b.spread_mean == Decimal("0.020000")  # (0.02 + 0.01 + 0.03) / 3 at 2 + 4 decimals
    assert b.imbalance_mean == Decimal("0.166667")  # (0 + 0 + 0.5) / 3, half-even
    assert b.microprice_close == Decimal("99.922500")  # size-weighted toward the thin ask
    assert b.spread_bps_max == Decimal("3.0026")  # 0.03 / 99.915 * 1e4 = 3.00255...
    d = b.to_dict()
    assert list(d)[1:] == list(BAR_COLUMNS) and d["open"] == "100.010"
    assert d["time"] == "2023-11-14T22:14:00.000Z" and d["ts"] == T0
    assert b.csv_row()[:4] == ["2023-11-14T22:14:00.000Z", "ETH/USD", "3", "0"]


def test_a_gap_inside_marks_the_bar() -> None:
    series = [(snap(T0, 100_00, 100_02), False), (snap(T0 + 5000, 100_00, 100_02), True),
              (snap(T0 + 60_000, 100_00, 100_02), False)]
    out = list(bars(series, 60_000))
    assert [b.gap for b in out] == [True, False]


def test_repeats_and_reordering_are_ignored() -> None:
    builder = BarBuilder(60_000)
    assert builder.add(snap(T0 + 1000, 100_00, 100_02)) is None
    assert builder.add(snap(T0 + 1000, 100_00, 100_02)) is None
    assert builder.add(snap(T0, 100_00, 100_02)) is None
    last = builder.finish()
    assert last is not None and last.snapshots == 1
    assert builder.finish() is None


def test_empty_intervals_have_no_bar() -> None:
    series = [(snap(T0, 100_00, 100_02), False), (snap(T0 + 180_000, 100_00, 100_02), False)]
    assert [b.start for b in bars(series, 60_000)] == [T0, T0 + 180_000]


@given(st.from_regex(EVERY_INPUT_PATTERN, fullmatch=True))
def test_every_interval_the_schema_declares_is_read(text: str) -> None:
    """The HTTP schema's ``every`` pattern allows only intervals parse_every takes."""
    assert 1000 <= parse_every(text) <= MAX_EVERY_MS
