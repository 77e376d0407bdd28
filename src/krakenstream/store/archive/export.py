"""One Parquet file of a series, for ``format=parquet`` and ``kms export --parquet``.

The archive's own layout (:mod:`.columns`) with a ``pair`` column after ``time`` (a single
exported file has no partition folder to say it), and ``gap_before`` as the reader marked it
(:func:`krakenstream.core.gaps.mark_gaps`). A series whose precision changes part way (Kraken
changed the pair's tick), or a file of several pairs, keeps each part exact: a decimal
column takes the finest scale among the parts (the same values, more zeros).

:class:`ParquetSink` writes such a file from tables that arrive one at a time (the export
of a month never sits in memory): row groups of about :data:`ROW_GROUP_ROWS` rows, written
to a temporary file (a segment) per column layout, copied to the output at the end. When
the layout changes part way (more levels, a finer scale), the segments are rewritten at the
end into one file of the layout that holds them all, a row group at a time.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from ...core.snapshot import METRIC_COLUMNS, Snapshot
from ...core.wide import level_columns
from .columns import HEAD_FIELDS, to_table
from .files import ZSTD_LEVEL, column_encodings

#: rows gathered into one row group (bigger groups compress better; this many rows of depth
#: 10 are about 25 MB in memory)
ROW_GROUP_ROWS = 65_536
#: bytes copied at a time from a segment to the output
COPY_CHUNK = 1 << 20


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


def _levels(schema: pa.Schema) -> int:
    n = 0
    while f"bid_price_{n + 1}" in schema.names:
        n += 1
    return n


def empty_table(depth: int) -> pa.Table:
    """A series with no row (its decimals at scale 0: there is no value to be exact about)."""
    fields = [HEAD_FIELDS[0], pa.field("pair", pa.string()), *HEAD_FIELDS[1:]]
    fields += [pa.field(n, pa.decimal64(18, 0)) for n in (*METRIC_COLUMNS,
                                                         *level_columns(depth))]
    return pa.schema(fields).empty_table()


def unified(schemas: Sequence[pa.Schema]) -> pa.Schema:
    """The layout that holds tables of every one of ``schemas`` exactly: the most levels,
    each decimal at the finest scale (and the digits that needs)."""
    merged = pa.unify_schemas(list(schemas), promote_options="permissive")
    order = [f.name for f in HEAD_FIELDS[:1]] + ["pair"] + [f.name for f in HEAD_FIELDS[1:]]
    order += [*METRIC_COLUMNS, *level_columns(max(_levels(s) for s in schemas))]
    return pa.schema([merged.field(name) for name in order])


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``'s layout: columns cast (exactly: a finer scale), the levels it
    lacks null."""
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _writer(where: Any, schema: pa.Schema) -> pq.ParquetWriter:
    probe = schema.empty_table()
    return pq.ParquetWriter(
        where, schema, compression="zstd", compression_level=ZSTD_LEVEL,
        use_dictionary=["origin", "pair"], store_decimal_as_integer=True,
        column_encoding=column_encodings(probe), write_statistics=["time", "seq", "pair"],
        store_schema=False)


class ParquetSink:
    """Wide tables in (each with a ``pair`` column, any layout), one Parquet file out, to
    ``out`` (a binary file object). Blocking: async callers run it in a worker thread.
    Segments of other layouts wait in temporary files in ``tmp_dir``."""

    def __init__(self, out: IO[bytes], *, tmp_dir: str | Path | None = None) -> None:
        self.out = out
        self.tmp_dir = tmp_dir
        self.rows = 0
        #: (schema, file, writer) per layout seen, in order; the first writes to ``out``
        #: directly unless another layout follows
        self._segments: list[tuple[pa.Schema, IO[bytes], pq.ParquetWriter]] = []
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._pending and table.schema != self._pending[0].schema:
            self._flush()
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        schema = table.schema.remove_metadata()
        if not self._segments or self._segments[-1][0] != schema:
            file = tempfile.TemporaryFile(dir=self.tmp_dir)  # closed in close()
            self._segments.append((schema, file, _writer(file, schema)))
        self._segments[-1][2].write_table(table.replace_schema_metadata(None))

    def close(self, depth: int = 10) -> None:
        """Finish the file (an empty series is a file of no row at ``depth`` levels)."""
        self._flush()
        try:
            if not self._segments:
                with _writer(self.out, empty_table(depth).schema):
                    return
            for _, _, writer in self._segments:
                writer.close()
            if len(self._segments) == 1:  # one layout throughout: the file as written
                file = self._segments[0][1]
                file.seek(0)
                shutil.copyfileobj(file, self.out, COPY_CHUNK)
                return
            target = unified([schema for schema, _, _ in self._segments])
            with _writer(self.out, target) as writer:
                for _, file, _ in self._segments:
                    file.seek(0)
                    parquet = pq.ParquetFile(file)
                    for i in range(parquet.num_row_groups):
                        writer.write_table(conform(parquet.read_row_group(i), target))
        finally:
            for _, file, _ in self._segments:
                with contextlib.suppress(OSError):
                    file.close()
            self._segments = []


def parquet_bytes(snaps: Sequence[Snapshot], depth: int) -> bytes:
    """The series as one Parquet file, in memory (zstd, decimals as in the archive)."""
    out = io.BytesIO()
    sink = ParquetSink(out)
    sink.write(series_table(snaps, depth))
    sink.close(depth)
    return out.getvalue()
