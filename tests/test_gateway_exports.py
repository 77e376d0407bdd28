"""History bodies (gateway/exports.py): rows the store rendered, gathered into chunks."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import orjson

from gateway_support import sample_snapshot
from krakenstream.core.snapshot import CSV_COLUMNS
from krakenstream.daemon.gateway.exports import (
    CHUNK_BYTES,
    ROWS_PER_CHUNK,
    csv_body,
    json_body,
    ndjson_body,
)


async def lines(items: list[str]) -> AsyncIterator[str]:
    for item in items:
        yield item


async def test_csv_body_is_the_header_then_the_rendered_lines_in_chunks() -> None:
    snaps = [sample_snapshot(ts=1_000 * i) for i in range(ROWS_PER_CHUNK + 3)]
    rendered = [",".join(s.csv_row()) + "\n" for s in snaps]
    chunks = [c async for c in csv_body(rendered[0], lines(rendered[1:]))]
    assert len(chunks) == 1 + 2  # the header, a full chunk, the rest
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    assert rows == [CSV_COLUMNS, *(s.csv_row() for s in snaps)]
    assert [c async for c in csv_body(None, lines([]))] == [",".join(CSV_COLUMNS).encode()
                                                            + b"\n"]


async def test_json_body_is_one_document_also_when_empty() -> None:
    snap = sample_snapshot(ts=1_000)

    async def rows() -> AsyncIterator[bytes]:
        yield snap.to_json()

    body = b"".join([c async for c in json_body("ETH/USD", "asc", snap.to_json(), rows())])
    assert orjson.loads(body) == {"pair": "ETH/USD", "order": "asc",
                                  "snapshots": [snap.to_dict(), snap.to_dict()]}
    empty = b"".join([c async for c in json_body("ETH/USD", "desc", None, rows())])
    assert orjson.loads(empty) == {"pair": "ETH/USD", "order": "desc", "snapshots": []}


async def test_a_chunk_is_bounded_in_bytes_not_only_rows() -> None:
    """At depth 1000 a row is ~55 KB of JSON: 500 of them made a 25 MB chunk."""
    deep = sample_snapshot(ts=1_000, levels=1000)
    row = deep.to_json()
    assert len(row) > 40_000

    async def rows() -> AsyncIterator[bytes]:
        for _ in range(99):
            yield row

    chunks = [c async for c in ndjson_body(row, rows())]
    assert b"".join(chunks).count(b"\n") == 100
    assert max(len(c) for c in chunks) <= CHUNK_BYTES + len(row) + 1
    assert len(chunks) >= 100 * len(row) // (CHUNK_BYTES + len(row))
