"""History exports as streamed bodies: JSON, NDJSON and CSV, chunk by chunk, never whole.

All three start from the store's stored JSON (``history_json``): JSON and NDJSON re-emit those
bytes as they are, so a 10,000-snapshot export costs a few hundred kilobytes of chunks at a
time and no decoding. CSV needs the ``Snapshot.csv_row()`` columns; every one of them is
already in the stored ``Snapshot.to_dict()`` record as the same text (prices and derived
metrics are stored formatted), so a row is built from the parsed record
(``core.snapshot.csv_row_from_dict``) instead of a full ``Snapshot.from_json`` and
``csv_row``: several times faster. A record that does not look like ours
(another schema, a missing field) goes the slow, authoritative way. The CSV conversion runs
in a worker thread a chunk at a time, so the event loop keeps serving other requests.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

from ...core.snapshot import CSV_COLUMNS, SCHEMA_VERSION, Snapshot, csv_row_from_dict

log = logging.getLogger(__name__)

#: stored records gathered into one body chunk (about 0.25-1 MB for depth-10 snapshots)
ROWS_PER_CHUNK = 500
#: what makes a CSV field need quoting (besides a comma, found by counting them)
_NEEDS_QUOTING = re.compile(r'["\r\n]')


async def aclose(it: AsyncIterator[Any]) -> None:
    """Close a store's row iterator (an async generator) so its query ends now."""
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()


async def _chunks(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
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


async def csv_body(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield csv_text([CSV_COLUMNS]).encode()
    if first is None:
        return
    async for batch in _chunks(first, rest):
        yield await asyncio.to_thread(csv_chunk, batch)


def csv_text(rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def csv_chunk(records: Sequence[bytes]) -> bytes:
    """Stored snapshot records as CSV lines; a record that does not decode is logged, skipped.

    Our fields never hold a comma, a quote or a line break, so a line is a plain join (five
    times faster than the csv module); a line that would need quoting goes through the csv
    module, so the output is always valid CSV.
    """
    lines: list[str] = []
    for data in records:
        try:
            fields = csv_fields(data)
        except ValueError as exc:
            log.warning("history row skipped in a CSV export: %s", exc)
            continue
        line = ",".join(fields)
        plain = line.count(",") == len(fields) - 1 and not _NEEDS_QUOTING.search(line)
        lines.append(line + "\n" if plain else csv_text([fields]))
    return "".join(lines).encode()


def csv_fields(data: bytes) -> list[str]:
    """``Snapshot.from_json(data).csv_row()``, from the stored text where it can be trusted."""
    try:
        d: Any = orjson.loads(data)
        if isinstance(d, dict) and d.get("schema") == SCHEMA_VERSION:
            return csv_row_from_dict(d)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        pass
    return Snapshot.from_json(data).csv_row()
