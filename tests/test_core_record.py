"""A stored row read back (core/record.py): the continuity fields, and the renderings with a
derived mark; CSV lines quoted when they must be; a damaged row skipped, not fatal."""

from __future__ import annotations

import csv
import io

import orjson
import pytest

from gateway_support import sample_snapshot
from krakenstream.core.record import decode_record
from krakenstream.core.snapshot import Snapshot
from krakenstream.store.base import render_asc


def csv_fields(data: bytes) -> list[str]:
    """The CSV row of one stored JSON row, with its own published flag as the mark."""
    rec = decode_record(data)
    return rec.csv("ETH/USD", orjson.loads(data)["gap_before"]).rstrip("\n").split(",")


def test_csv_fast_path_matches_csv_row() -> None:
    snap = sample_snapshot(ts=1795626000000)
    assert csv_fields(snap.to_json()) == snap.csv_row()
    gap = Snapshot(**{**_fields(snap), "gap_before": True, "exchange_ts": None})
    assert csv_fields(gap.to_json()) == gap.csv_row()
    # a record of another shape goes the authoritative way, or fails as malformed
    legacy = snap.to_dict()
    del legacy["time"]
    assert csv_fields(orjson.dumps(legacy)) == snap.csv_row()
    with pytest.raises(ValueError):
        csv_fields(b'{"schema": 1}')


def _fields(snap: Snapshot) -> dict[str, object]:
    return {name: getattr(snap, name) for name in Snapshot.__slots__}


def test_csv_lines_quote_what_needs_quoting() -> None:
    plain = sample_snapshot(ts=1_000)
    odd = Snapshot(pair="ETH/USD", ts=2_000, exchange_ts='2026-11-25 "x", y', seq=2,
                   price_precision=2, qty_precision=8, bids=plain.bids, asks=plain.asks,
                   checksum=1)
    rows = [(1_000, plain.to_json()), (1_500, b"not json"), (2_000, odd.to_json())]
    lines, _ = render_asc(rows, None, lambda rec, mark: rec.csv("ETH/USD", mark))
    parsed = list(csv.reader(io.StringIO("".join(lines))))
    assert parsed == [plain.csv_row(), odd.csv_row()]  # the bad record is skipped
