"""History exports as streamed bodies: JSON, NDJSON and CSV, chunk by chunk, never whole.

The store renders each row already (``history_json``: ``Snapshot.to_json()`` bytes;
``history_csv``: ``Snapshot.csv_row()`` lines), in a worker thread a chunk at a time and with
``gap_before`` derived from the stored neighbours, so here the rows are only gathered into
body chunks: a 10,000-snapshot export costs a few hundred kilobytes at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import orjson

from ...core.snapshot import CSV_COLUMNS, csv_line

#: a rendered row: a snapshot's JSON, or a CSV line
R = TypeVar("R", bytes, str)

#: rows gathered into one body chunk, at most, and its bytes: a chunk ends at whichever comes
#: first (500 rows of depth 1000 were a 25 MB chunk; of depth 10, about 450 KB)
ROWS_PER_CHUNK = 500
CHUNK_BYTES = 256 * 1024


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
