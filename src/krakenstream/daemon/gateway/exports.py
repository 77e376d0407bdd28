"""History exports as streamed bodies: JSON, NDJSON, CSV (wide or levels) and Parquet,
chunk by chunk, never whole.

JSON, NDJSON and the levels CSV: the store renders each row already (``history_json``:
``Snapshot.to_json()`` bytes; ``history_csv``: ``Snapshot.csv_row()`` lines), in a worker
thread a chunk at a time and with ``gap_before`` derived from the stored neighbours, so here
the rows are only gathered into body chunks: a 10,000-snapshot export costs a few hundred
kilobytes at a time.

The wide CSV and Parquet start from wide tables (:meth:`krakenstream.store.span.
SpanningHistory.tables`: an archive file's hour, or 2,000 store rows, at a time) written a
column at a time in a worker thread (:mod:`krakenstream.store.archive.text`,
:class:`krakenstream.store.archive.export.ParquetSink`). A Parquet file is readable only
once its footer is written, so it is written whole to a temporary file first, then sent.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from typing import IO, Any, TypeVar

import orjson

from ...core.snapshot import CSV_COLUMNS, csv_line
from ...store.archive.export import ParquetSink
from ...store.archive.text import header, wide_csv

#: a rendered row: a snapshot's JSON, or a CSV line
R = TypeVar("R", bytes, str)

#: rows gathered into one body chunk, at most, and its bytes: a chunk ends at whichever comes
#: first (500 rows of depth 1000 were a 25 MB chunk; of depth 10, about 450 KB)
ROWS_PER_CHUNK = 500
CHUNK_BYTES = 256 * 1024
#: wide CSV rendered a piece of about this many bytes at a time (then sent in CHUNK_BYTES
#: chunks): a few Arrow calls per hour of depth 10, bounded memory at depth 1000
RENDER_BYTES = 4 * 2**20


async def aclose(it: AsyncIterator[Any]) -> None:
    """Close a store's row iterator (an async generator) so its query ends now."""
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()


async def _chunks(first: R, rest: AsyncIterator[R]) -> AsyncIterator[list[R]]:
    """``first`` then ``rest``, in lists of up to :data:`ROWS_PER_CHUNK` rows and about
    :data:`CHUNK_BYTES`; closes ``rest`` at the end, also when the client goes away
    mid-stream."""
    try:
        batch, size = [first], len(first)
        async for row in rest:
            batch.append(row)
            size += len(row)
            if len(batch) >= ROWS_PER_CHUNK or size >= CHUNK_BYTES:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch
    finally:
        await aclose(rest)


async def ndjson_body(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first is None:
        return
    async for batch in _chunks(first, rest):
        yield b"\n".join(batch) + b"\n"


async def json_body(
    pair: str, order: str, first: bytes | None, rest: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    head = orjson.dumps({"pair": pair, "order": order})[:-1] + b',"snapshots":['
    if first is None:
        yield head + b"]}"
        return
    yield head
    sep = b""
    async for batch in _chunks(first, rest):
        yield sep + b",".join(batch)
        sep = b","
    yield b"]}"


async def csv_body(first: str | None, rest: AsyncIterator[str]) -> AsyncIterator[bytes]:
    yield csv_line(CSV_COLUMNS).encode()
    if first is None:
        return
    async for batch in _chunks(first, rest):
        yield "".join(batch).encode()


async def wide_csv_body(first: Any, rest: AsyncIterator[Any],
                        depth: int) -> AsyncIterator[bytes]:
    """Wide tables (:meth:`SpanningHistory.tables`) as wide CSV: the header, then the rows,
    rendered a column at a time in a worker thread about :data:`RENDER_BYTES` at a time and
    sent in chunks of at most :data:`CHUNK_BYTES`."""
    yield header(depth)
    if first is None:
        return
    # a wide row: 13 head and metric fields and 4 numbers a level (a bid and an ask price and
    # size), about 12 bytes each
    rows = max(1, RENDER_BYTES // (12 * (13 + 4 * depth)))
    try:
        table = first
        while table is not None:
            for offset in range(0, table.num_rows, rows):
                text = await asyncio.to_thread(wide_csv, table.slice(offset, rows), depth)
                for at in range(0, len(text), CHUNK_BYTES):
                    yield text[at:at + CHUNK_BYTES]
            table = await anext(rest, None)
    finally:
        await aclose(rest)


async def write_parquet_file(tables: AsyncIterator[Any], depth: int) -> tuple[IO[bytes], int]:
    """Wide tables into one Parquet file in a temporary file (removed once closed), rewound;
    and how many rows it holds. Written in a worker thread, a table at a time."""
    file = await asyncio.to_thread(tempfile.TemporaryFile)
    try:
        sink = ParquetSink(file)
        try:
            async for table in tables:
                await asyncio.to_thread(sink.write, table)
        finally:
            await aclose(tables)
        await asyncio.to_thread(sink.close, depth)
        await asyncio.to_thread(file.seek, 0)
    except BaseException:
        file.close()
        raise
    return file, sink.rows


async def file_body(file: IO[bytes]) -> AsyncIterator[bytes]:
    """A file's bytes, :data:`CHUNK_BYTES` at a time; the file is closed at the end."""
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
            yield chunk
    finally:
        file.close()
