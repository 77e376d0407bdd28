"""Bars of wide tables (store/archive/bars.py): the very bars of core/bars.py's BarBuilder."""

from __future__ import annotations

import dataclasses

import pytest

from archive_support import sim_snapshots
from krakenstream.core.bars import bars
from krakenstream.core.snapshot import Snapshot
from krakenstream.store.archive.bars import TableBars
from krakenstream.store.archive.export import series_table


def series() -> list[Snapshot]:
    snaps = list(sim_snapshots("DOGE/USD", 1900, rate=10, start=1_699_920_017_000))
    snaps[100] = dataclasses.replace(snaps[100], gap_before=True)
    snaps[101] = dataclasses.replace(snaps[101], asks=())  # no mid, spread, microprice
    snaps[700] = dataclasses.replace(snaps[700], bids=(), asks=())
    del snaps[1000:1130]  # a stretch with no snapshot at all: no bar
    return snaps


def table_bars(snaps: list[Snapshot], every_ms: int, cut: list[int]) -> list[dict[str, object]]:
    acc = TableBars(every_ms, snaps[0].pair)
    out = []
    for lo, hi in zip([0, *cut], [*cut, len(snaps)], strict=True):
        out += acc.add(series_table(snaps[lo:hi], 10))
    return [b.to_dict() for b in out + acc.finish()]


@pytest.mark.parametrize("every_ms", [1_000, 60_000, 300_000, 3_600_000])
@pytest.mark.parametrize("cut", [[], [37, 59, 61, 1500], [900]])
@pytest.mark.slow
def test_tables_give_the_bars_of_the_builder(every_ms: int, cut: list[int]) -> None:
    snaps = series()
    want = [b.to_dict() for b in bars(((s, s.gap_before) for s in snaps), every_ms)]
    assert table_bars(snaps, every_ms, cut) == want
    assert any(w["gap"] for w in want)


def test_a_value_of_more_than_18_digits_goes_row_by_row() -> None:
    snaps = list(sim_snapshots("BTC/USD", 200, rate=10))
    big = dataclasses.replace(snaps[50], bids=((10**19, 1), *snaps[50].bids[1:]))
    snaps[50] = big
    want = [b.to_dict() for b in bars(((s, s.gap_before) for s in snaps), 60_000)]
    assert table_bars(snaps, 60_000, [120]) == want
