"""One Parquet file of a series, for ``format=parquet`` and ``kms export --parquet``.

The archive's own layout (:mod:`.columns`) with a ``pair`` column after ``time`` (a single
exported file has no partition folder to say it), and ``gap_before`` as the reader marked it
(:func:`krakenstream.core.gaps.mark_gaps`). A series whose precision changes part way (Kraken
changed the pair's tick) keeps each part exact: the decimal columns take the finer scale.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import pyarrow as pa

from ...core.snapshot import Snapshot
from .columns import to_table
from .files import write_parquet


def _runs(snaps: Iterable[Snapshot]) -> list[list[Snapshot]]:
    """Consecutive snapshots of one pair at one pair of precisions."""
    out: list[list[Snapshot]] = []
    for s in snaps:
        last = out[-1][-1] if out else None
        if last is None or (last.pair, last.price_precision, last.qty_precision) != (
                s.pair, s.price_precision, s.qty_precision):
            out.append([])
        out[-1].append(s)
    return out


def series_table(snaps: Sequence[Snapshot], depth: int) -> pa.Table:
    """Snapshots (of one or several pairs) as one wide table with a ``pair`` column."""
    runs = _runs(snaps)
    if not runs:
        raise ValueError("no snapshots")
    n = max(depth, *(max(len(s.bids), len(s.asks)) for s in snaps))
    tables = []
    for run in runs:
        t = to_table(run, n)
        tables.append(t.add_column(1, "pair", pa.array([run[0].pair] * len(run), pa.string())))
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")


def parquet_bytes(snaps: Sequence[Snapshot], depth: int) -> bytes:
    """The series as one Parquet file, in memory (zstd, decimals as in the archive)."""
    table = series_table(snaps, depth)
    out = io.BytesIO()
    write_parquet(table, out, dictionary=("origin", "pair"))
    return out.getvalue()
