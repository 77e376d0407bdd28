"""Bars of wide tables (:mod:`.columns`), a column at a time: the rule of
:mod:`krakenstream.core.bars`, exactly, without a Decimal per snapshot.

A day of one pair is 86,400 snapshots; through :class:`~krakenstream.core.bars.BarBuilder`
each costs a Snapshot and a dozen Decimal operations. Here a table's rows are grouped by
interval in Arrow (the rows come oldest first, so an interval is a run of rows) over the
metrics the table already holds, as unscaled integers: first and last non-null mid and
microprice, min and max, sums and counts of the spread, the spread in basis points and the
imbalance (summed as DECIMAL(38), which cannot overflow), whether a row is marked. Only each
interval's few numbers become Decimals, and the means are rounded by the same
:class:`~krakenstream.core.bars.Bar` properties, so both ways give the same text.

A bar may straddle two tables: :class:`TableBars` holds the last bar of each table open and
merges the next table's first into it. A table it cannot do this way (a decimal of more than
18 digits, a time before 1970) goes through ``BarBuilder`` row by row.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ...core.bars import Bar, BarBuilder
from .columns import from_table

_NUMBERS = ("mid", "microprice", "spread", "spread_bps", "imbalance")
_AGGREGATES = [
    ("time", "count"), ("gap_before", "any"),
    ("mid", "first"), ("mid", "last"), ("mid", "min"), ("mid", "max"),
    ("microprice", "last"),
    ("spread", "max"), ("spread", "count"), ("spread_sum", "sum"),
    ("spread_bps", "max"), ("spread_bps", "count"), ("spread_bps_sum", "sum"),
    ("imbalance", "count"), ("imbalance_sum", "sum"),
]


def _ints(column: Any) -> pa.Array | None:
    """A decimal column's unscaled integers as int64, or None if it has more than 18 digits."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    t = arr.type
    if pa.types.is_decimal128(t) and t.precision <= 18:
        arr = arr.cast(pa.decimal64(t.precision, t.scale))
    return arr.view(pa.int64()) if pa.types.is_decimal64(arr.type) else None


def _dec(value: Any, scale: int) -> Decimal | None:
    return None if value is None else Decimal(int(value)).scaleb(-scale)


def _sum(value: Any, scale: int) -> Decimal:
    return Decimal(0) if value is None else Decimal(value).scaleb(-scale)


def bars_of_table(table: pa.Table, every_ms: int, pair: str) -> list[Bar] | None:
    """The bars of one table's rows (oldest first, ``gap_before`` marked), in order; the
    first and the last may be partial (merged by :class:`TableBars`). None when the table
    cannot be done a column at a time."""
    ts = table.column("time").cast(pa.int64()).combine_chunks()
    if len(ts) == 0:
        return []
    if pc.min(ts).as_py() < 0:
        return None
    scales = {n: table.schema.field(n).type.scale for n in _NUMBERS}
    columns: dict[str, Any] = {
        "bucket": pc.multiply(pc.divide(ts, every_ms), every_ms),  # ts >= 0: the floor
        "time": ts, "gap_before": pc.fill_null(table.column("gap_before"), False),
    }
    for name in _NUMBERS:
        ints = _ints(table.column(name))
        if ints is None:
            return None
        columns[name] = ints
        if name in ("spread", "spread_bps", "imbalance"):
            columns[f"{name}_sum"] = ints.cast(pa.decimal128(38, 0))
    grouped = pa.table(columns).group_by("bucket", use_threads=False).aggregate(_AGGREGATES)
    pp = scales["spread"]
    out: list[Bar] = []
    for g in grouped.to_pylist():
        out.append(Bar(
            pair=pair, start=g["bucket"], every_ms=every_ms, price_precision=pp,
            snapshots=g["time_count"], gap=bool(g["gap_before_any"]),
            open=_dec(g["mid_first"], scales["mid"]), high=_dec(g["mid_max"], scales["mid"]),
            low=_dec(g["mid_min"], scales["mid"]), close=_dec(g["mid_last"], scales["mid"]),
            microprice_close=_dec(g["microprice_last"], scales["microprice"]),
            spread_max=_dec(g["spread_max"], scales["spread"]),
            spread_bps_max=_dec(g["spread_bps_max"], scales["spread_bps"]),
            _spread_sum=_sum(g["spread_sum_sum"], scales["spread"]),
            _spread_n=g["spread_count"],
            _bps_sum=_sum(g["spread_bps_sum_sum"], scales["spread_bps"]),
            _bps_n=g["spread_bps_count"],
            _imb_sum=_sum(g["imbalance_sum_sum"], scales["imbalance"]),
            _imb_n=g["imbalance_count"],
        ))
    return sorted(out, key=lambda b: b.start)


def _bigger(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None else max(a, b)


def _smaller(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None else min(a, b)


def merge(a: Bar, b: Bar) -> Bar:
    """One bar of two parts of the same interval, ``a`` the older part."""
    return Bar(
        pair=a.pair, start=a.start, every_ms=a.every_ms,
        price_precision=max(a.price_precision, b.price_precision),
        snapshots=a.snapshots + b.snapshots, gap=a.gap or b.gap,
        open=a.open if a.open is not None else b.open, high=_bigger(a.high, b.high),
        low=_smaller(a.low, b.low), close=b.close if b.close is not None else a.close,
        microprice_close=(b.microprice_close if b.microprice_close is not None
                          else a.microprice_close),
        spread_max=_bigger(a.spread_max, b.spread_max),
        spread_bps_max=_bigger(a.spread_bps_max, b.spread_bps_max),
        _spread_sum=a._spread_sum + b._spread_sum, _spread_n=a._spread_n + b._spread_n,
        _bps_sum=a._bps_sum + b._bps_sum, _bps_n=a._bps_n + b._bps_n,
        _imb_sum=a._imb_sum + b._imb_sum, _imb_n=a._imb_n + b._imb_n,
    )


class TableBars:
    """Marked wide tables of one pair in (oldest first), finished bars out."""

    def __init__(self, every_ms: int, pair: str) -> None:
        self.every_ms = every_ms
        self.pair = pair
        self._open: Bar | None = None

    def add(self, table: pa.Table) -> list[Bar]:
        """The bars this table finished (all but its last, which the next may continue)."""
        found = bars_of_table(table, self.every_ms, self.pair)
        if found is None:
            found = self._row_by_row(table)
        if not found:
            return []
        if self._open is not None:
            if found[0].start == self._open.start:
                found[0] = merge(self._open, found[0])
            else:
                found.insert(0, self._open)
        self._open = found.pop()
        return found

    def finish(self) -> list[Bar]:
        bar, self._open = self._open, None
        return [] if bar is None else [bar]

    def _row_by_row(self, table: pa.Table) -> list[Bar]:
        builder = BarBuilder(self.every_ms)
        out: list[Bar] = []
        for snap in from_table(table, self.pair):
            done = builder.add(snap, snap.gap_before)  # the table's own mark
            if done is not None:
                out.append(done)
        last = builder.finish()
        return out + ([last] if last is not None else [])
