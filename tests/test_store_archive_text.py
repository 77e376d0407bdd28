"""Wide tables as CSV text, a column at a time (store/archive/text.py): the same text as the
row-at-a-time ``core.wide.wide_row``, for every value."""

from __future__ import annotations

import csv
import dataclasses
import io

import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from archive_support import sim_snapshots
from krakenstream.core.numbers import format_scaled
from krakenstream.core.wide import wide_columns, wide_row
from krakenstream.store.archive.columns import gap_marks
from krakenstream.store.archive.export import series_table
from krakenstream.store.archive.text import decimal_text, header, wide_csv

INT64 = st.integers(min_value=-(10**18) + 1, max_value=10**18 - 1)


@given(st.lists(st.one_of(st.none(), INT64), max_size=30), st.integers(0, 18))
@example([0, -1, 1, 10**18 - 1, -(10**18) + 1, None, 5], 8)
@example([0, -1, 1, 123], 0)
@settings(deadline=None)
def test_decimal_text_is_format_scaled(values: list[int | None], scale: int) -> None:
    column = pa.array(values, pa.int64()).view(pa.decimal64(18, scale))
    want = [None if v is None else format_scaled(v, scale) for v in values]
    assert decimal_text(column).to_pylist() == want
    assert decimal_text(column.cast(pa.decimal128(18, scale))).to_pylist() == want


def test_wide_csv_is_wide_row_for_each_snapshot() -> None:
    snaps = list(sim_snapshots("PEPE/USD", 300, rate=10))
    snaps[7] = dataclasses.replace(snaps[7], bids=snaps[7].bids[:2], asks=(), gap_before=True)
    table = series_table(snaps, 10)
    want = "".join(",".join(wide_row(s, 10)) + "\n" for s in snaps).encode()
    assert wide_csv(table, 10) == want
    # fewer levels than the table holds: cut; more: empty columns
    assert wide_csv(table, 3) == "".join(",".join(wide_row(s, 3)) + "\n"
                                         for s in snaps).encode()
    assert wide_csv(table, 12).splitlines()[0].decode() == ",".join(wide_row(snaps[0], 12))
    assert header(10).decode().rstrip("\n").split(",") == wide_columns(10)


def test_a_field_that_needs_quoting_is_quoted() -> None:
    (snap,) = sim_snapshots("BTC/USD", 1)
    odd = dataclasses.replace(snap, exchange_ts='2023-11-14T00:00:00,5"Z')
    text = wide_csv(series_table([odd], 10), 10).decode()
    assert next(csv.reader(io.StringIO(text))) == wide_row(odd, 10)


def test_gap_marks_apply_the_rule_to_a_table() -> None:
    snaps = list(sim_snapshots("BTC/USD", 6))
    snaps[2] = dataclasses.replace(snaps[2], seq=snaps[2].seq + 5)  # a hole before it
    snaps[4] = dataclasses.replace(snaps[4], origin="other")  # another publisher
    snaps[5] = dataclasses.replace(snaps[5], gap_before=True, origin="other")
    table = series_table(snaps, 10)
    assert gap_marks(table, None).to_pylist() == [False, False, True, True, True, True]
    # the first row against the row before it
    assert gap_marks(table, (snaps[0].seq - 1, snaps[0].origin)).to_pylist()[0] is False
    assert gap_marks(table, (snaps[0].seq - 2, snaps[0].origin)).to_pylist()[0] is True
    assert gap_marks(table, (snaps[0].seq - 1, "x")).to_pylist()[0] is True
