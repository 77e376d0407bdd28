"""Snapshots to Arrow tables in the wide layout and back, exactly.

One table holds one pair at one pair of precisions (a file of the archive). Columns:

``time``
    timestamp[ms, UTC], the snapshot's own time (never null)
``seq``, ``origin``, ``gap_before``, ``checksum``
    int64, string, bool, uint32: as published (``gap_before`` is the publisher's flag; the
    read-time mark is derived by :func:`krakenstream.core.gaps.mark_gaps`)
``exchange_ts``
    string, Kraken's RFC 3339 text as received (kept as text: it round-trips exactly whatever
    digits Kraken sends; ``CAST(exchange_ts AS TIMESTAMPTZ)`` in SQL)
metrics, then ``bid_price_1, bid_qty_1 … ask_price_N, ask_qty_N``
    DECIMAL(18, scale) at the pair's precision (see :func:`~krakenstream.core.snapshot.
    metric_scales` for the metrics); a column holding a value of more than 18 digits is
    DECIMAL(38, scale) in that file. Levels a side does not have are null.

Decimals are built from and read back to their unscaled integers without going through
Python ``Decimal`` objects: an int64 array is *viewed* as ``decimal64`` (same bytes), and a
``decimal64`` column read back is viewed as int64 again.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from itertools import chain
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ...core.events import Level
from ...core.numbers import EXACT
from ...core.snapshot import METRIC_COLUMNS, Snapshot, metric_scales
from ...core.wide import level_columns

#: the columns of an archive file before the metrics (``pair`` is the partition, not a column)
HEAD_FIELDS = (
    pa.field("time", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("seq", pa.int64()),
    pa.field("origin", pa.string()),
    pa.field("gap_before", pa.bool_()),
    pa.field("checksum", pa.uint32()),
    pa.field("exchange_ts", pa.string()),
)
#: the largest unscaled value of a DECIMAL(18, s) (and so of an INT64 decimal)
_MAX18 = 10**18 - 1


def _decimal_array(values: Sequence[int | None], scale: int) -> pa.Array:
    """Unscaled ints as DECIMAL(18, scale), or DECIMAL(38, scale) if one needs more digits."""
    try:
        ints = pa.array(values, pa.int64())
        bounds = pc.min_max(ints).as_py()
        fits = bounds["min"] is None or (-_MAX18 <= bounds["min"] and bounds["max"] <= _MAX18)
    except (OverflowError, pa.ArrowInvalid):
        fits = False
    if fits:
        return ints.view(pa.decimal64(18, scale))
    return pa.array([None if v is None else Decimal(v).scaleb(-scale, EXACT) for v in values],
                    pa.decimal128(38, scale))


def unscaled(column: pa.Array | pa.ChunkedArray) -> list[int | None]:
    """A decimal column's unscaled integers (None for nulls), exactly."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    t = arr.type
    if pa.types.is_decimal128(t) and t.precision <= 18:
        # an INT64 decimal read without its Arrow schema (what the archive writes): the same
        # values as decimal64, whose bytes are the unscaled integers
        arr = arr.cast(pa.decimal64(t.precision, t.scale))
        t = arr.type
    if pa.types.is_decimal64(t):
        out: list[int | None] = arr.view(pa.int64()).to_pylist()
        return out
    if pa.types.is_decimal32(t):
        out = arr.view(pa.int32()).to_pylist()
        return out
    if pa.types.is_decimal128(t) or pa.types.is_decimal256(t):
        scale = t.scale
        return [None if v is None else int(v.scaleb(scale, EXACT)) for v in arr.to_pylist()]
    if pa.types.is_integer(t):
        out = arr.to_pylist()
        return out
    raise ValueError(f"not a decimal column: {t}")


def depth_of(snaps: Sequence[Snapshot], depth: int) -> int:
    """Levels a side the table needs: ``depth``, or more if a snapshot has more."""
    return max([depth, *(max(len(s.bids), len(s.asks)) for s in snaps)])


def to_table(snaps: Sequence[Snapshot], depth: int) -> pa.Table:
    """Snapshots of one pair at one pair of precisions as a wide table (``depth`` levels a
    side at least). Raises ValueError if they are not of one pair and one precision."""
    if not snaps:
        raise ValueError("no snapshots")
    first = snaps[0]
    pp, qp = first.price_precision, first.qty_precision
    if any(s.pair != first.pair or s.price_precision != pp or s.qty_precision != qp
           for s in snaps):
        raise ValueError("a table holds one pair at one pair of precisions")
    n = depth_of(snaps, depth)
    arrays: list[pa.Array] = [
        pa.array([s.ts for s in snaps], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        pa.array([s.seq for s in snaps], pa.int64()),
        pa.array([s.origin for s in snaps], pa.string()),
        pa.array([s.gap_before for s in snaps], pa.bool_()),
        pa.array([s.checksum for s in snaps], pa.uint32()),
        pa.array([s.exchange_ts for s in snaps], pa.string()),
    ]
    names = [f.name for f in HEAD_FIELDS]
    metrics = list(zip(*(s.metrics_scaled() for s in snaps), strict=True))
    for name, scale, values in zip(METRIC_COLUMNS, metric_scales(pp), metrics, strict=True):
        names.append(name)
        arrays.append(_decimal_array(values, scale))
    names += level_columns(n)
    pad = (None,) * (2 * n)
    for side in ("bids", "asks"):
        # one flat row per snapshot (p1, q1, p2, q2, ..., None...), transposed in C by zip
        flat = [(*chain.from_iterable(lv), *pad)[:2 * n]
                for lv in (getattr(s, side) for s in snaps)]
        for i, column in enumerate(zip(*flat, strict=True)):
            arrays.append(_decimal_array(column, qp if i % 2 else pp))
    return pa.Table.from_arrays(arrays, names=names)


def _levels(columns: list[tuple[list[int | None], list[int | None]]], row: int) -> tuple[
        Level, ...]:
    out: list[Level] = []
    for prices, qtys in columns:
        p, q = prices[row], qtys[row]
        if p is None or q is None:
            break
        out.append((p, q))
    return tuple(out)


def _precisions(table: pa.Table, meta: dict[bytes, bytes] | None) -> tuple[int, int]:
    if meta and b"kms.price_precision" in meta:
        return int(meta[b"kms.price_precision"]), int(meta[b"kms.qty_precision"])
    return table.schema.field("bid_price_1").type.scale, table.schema.field("bid_qty_1").type.scale


def from_table(table: pa.Table, pair: str) -> list[Snapshot]:
    """The snapshots of a wide table (as :func:`to_table` made it), in the table's order."""
    pp, qp = _precisions(table, table.schema.metadata)
    names = set(table.column_names)
    n = 0
    while f"bid_price_{n + 1}" in names:
        n += 1
    ts = table.column("time").cast(pa.int64()).to_pylist()
    seq = table.column("seq").to_pylist()
    origin: list[Any] = (table.column("origin").to_pylist() if "origin" in names
                         else [""] * len(ts))
    gap = table.column("gap_before").to_pylist()
    checksum = table.column("checksum").to_pylist()
    ets = table.column("exchange_ts").to_pylist()
    sides = [
        [(unscaled(table.column(f"{side}_price_{i}")), unscaled(table.column(f"{side}_qty_{i}")))
         for i in range(1, n + 1)]
        for side in ("bid", "ask")
    ]
    return [
        Snapshot(
            pair=pair, ts=ts[r], exchange_ts=ets[r], seq=seq[r], price_precision=pp,
            qty_precision=qp, bids=_levels(sides[0], r), asks=_levels(sides[1], r),
            checksum=checksum[r], gap_before=bool(gap[r]), origin=origin[r] or "",
        )
        for r in range(len(ts))
    ]


#: what the gap rule needs of the row before a table's first: (seq, origin)
Previous = tuple[int, str]


def gap_marks(table: pa.Table, previous: Previous | None) -> pa.Array:
    """The gap rule (:func:`krakenstream.core.gaps.follows`) over a table's rows at once, the
    rows oldest first and ``previous`` the stored row just before the first (None if none):
    a row is marked when its own flag is set, or it has a predecessor whose origin differs
    or whose seq is not its own seq - 1."""
    n = table.num_rows
    if n == 0:
        return pa.array([], pa.bool_())
    seq = table.column("seq").combine_chunks()
    origin = (pc.fill_null(table.column("origin"), "").combine_chunks()
              if "origin" in table.column_names else pa.array([""] * n, pa.string()))
    flag = pc.fill_null(table.column("gap_before"), False).combine_chunks()
    first_seq, first_origin = (None, None) if previous is None else previous
    prev_seq = pa.concat_arrays([pa.array([first_seq], pa.int64()), seq.slice(0, n - 1)])
    prev_origin = pa.concat_arrays([pa.array([first_origin], pa.string()),
                                    origin.slice(0, n - 1)])
    continues = pc.and_(pc.equal(seq, pc.add(prev_seq, 1)), pc.equal(origin, prev_origin))
    # no predecessor (null): nothing history claims to continue, only the flag counts
    return pc.or_(flag, pc.invert(pc.fill_null(continues, True)))


def last_row(table: pa.Table) -> Previous:
    """(seq, origin) of a table's last row, for :func:`gap_marks` of the table after it."""
    i = table.num_rows - 1
    origin = (table.column("origin")[i].as_py() if "origin" in table.column_names else "")
    return int(table.column("seq")[i].as_py()), origin or ""


def reverse(table: pa.Table) -> pa.Table:
    return table.take(pa.array(range(table.num_rows - 1, -1, -1), pa.int64()))


def with_marks(table: pa.Table, marks: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index("gap_before"), "gap_before", marks)
