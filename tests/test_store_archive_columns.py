"""``store/archive/columns.py``: snapshots to wide Arrow tables and back exactly, decimals
widened only when a value needs it, and the gap rule over whole columns."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pyarrow as pa
import pytest

from krakenstream.core.gaps import follows
from krakenstream.store.archive import columns
from test_store_support import series, synthetic


def test_a_table_round_trips_exactly_and_pads_short_sides() -> None:
    snaps = series("BTC/USD", 5)
    snaps[2] = dataclasses.replace(snaps[2], asks=snaps[2].asks[:3], origin="w2",
                                   gap_before=True)
    table = columns.to_table(snaps, depth=12)
    assert table.num_rows == 5 and "bid_price_12" in table.column_names
    assert "bid_price_13" not in table.column_names
    assert table.column("ask_price_4")[2].as_py() is None  # a side shorter than the table
    assert table.schema.field("bid_price_1").type == pa.decimal64(18, 1)
    assert columns.from_table(table, "BTC/USD") == snaps


def test_the_table_is_as_deep_as_its_deepest_snapshot() -> None:
    deep = synthetic("BTC/USD", 1_000, depth=25)
    assert columns.depth_of([deep], 10) == 25
    assert "ask_qty_25" in columns.to_table([deep], 10).column_names


def test_one_pair_at_one_precision_per_table() -> None:
    a = synthetic("BTC/USD", 1_000)
    with pytest.raises(ValueError, match="one pair at one pair of precisions"):
        columns.to_table([a, synthetic("ETH/USD", 2_000)], 10)
    with pytest.raises(ValueError, match="one pair at one pair of precisions"):
        columns.to_table([a, dataclasses.replace(a, ts=2_000, qty_precision=4)], 10)
    with pytest.raises(ValueError, match="no snapshots"):
        columns.to_table([], 10)


def test_a_value_past_18_digits_widens_its_column_only_and_stays_exact() -> None:
    big = 10**30 + 7  # a quantity no float and no int64 holds
    snap = synthetic("PEPE/USD", 1_000)
    snap = dataclasses.replace(snap, bids=((snap.bids[0][0], big), *snap.bids[1:]))
    table = columns.to_table([snap], 10)
    assert table.schema.field("bid_qty_1").type == pa.decimal128(38, 8)
    assert table.schema.field("bid_qty_2").type == pa.decimal64(18, 8)
    assert columns.unscaled(table.column("bid_qty_1")) == [big]
    assert columns.from_table(table, "PEPE/USD") == [snap]


def test_unscaled_reads_every_decimal_width_and_refuses_the_rest() -> None:
    assert columns.unscaled(pa.array([Decimal("1.25"), None], pa.decimal128(10, 2))) == [
        125, None]
    assert columns.unscaled(pa.array([5, None], pa.int64())) == [5, None]
    chunked = pa.chunked_array([pa.array([1], pa.int64()), pa.array([2], pa.int64())])
    assert columns.unscaled(chunked) == [1, 2]
    with pytest.raises(ValueError, match="not a decimal column"):
        columns.unscaled(pa.array(["1.5"]))


def test_gap_marks_are_the_gap_rule_over_whole_columns() -> None:
    snaps = series("BTC/USD", 6)
    snaps = [dataclasses.replace(s, seq=q, origin=o, gap_before=f) for s, (q, o, f) in zip(
        snaps, [(4, "a", False), (5, "a", False), (7, "a", False), (8, "b", False),
                (9, "b", True), (10, "b", False)], strict=True)]
    table = columns.to_table(snaps, 10)
    marks = columns.gap_marks(table, previous=(3, "a")).to_pylist()
    # the rule row by row, as core.gaps says it
    before = dataclasses.replace(snaps[0], seq=3, origin="a")
    assert marks == [not follows(p, s) for p, s in zip([before, *snaps], snaps, strict=False)]
    assert marks == [False, False, True, True, True, False]
    assert columns.gap_marks(table, previous=None).to_pylist()[0] is False  # nothing before
    assert columns.last_row(table) == (10, "b")
    assert columns.gap_marks(table.slice(0, 0), None).to_pylist() == []
    marked = columns.with_marks(table, pa.array(marks))
    assert marked.column("gap_before").to_pylist() == marks
    assert columns.reverse(table).column("seq").to_pylist() == [10, 9, 8, 7, 5, 4]
