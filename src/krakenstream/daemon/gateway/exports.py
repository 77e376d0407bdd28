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

T = TypeVar("T")

#: rows gathered into one body chunk (about 0.25-1 MB for depth-10 snapshots)
ROWS_PER_CHUNK = 500


async def aclose(it: AsyncIterator[Any]) -> None:
    """Close a store's row iterator (an async generator) so its query ends now."""
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()


async def _chunks(first: T, rest: AsyncIterator[T]) -> AsyncIterator[list[T]]:
    """``first`` then ``rest``, in lists of up to ROWS_PER_CHUNK; closes ``rest`` at the end,
    also when the client goes away mid-stream."""
    try:
        batch = [first]
        async for row in rest:
            batch.append(row)
            if len(batch) >= ROWS_PER_CHUNK:
                yield batch
                batch = []
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
