"""History bodies (gateway/exports.py): CSV rows from stored JSON, quoted when they must be."""

from __future__ import annotations

import csv
import io

import orjson
import pytest

from gateway_support import sample_snapshot
from krakenstream.core.snapshot import Snapshot
from krakenstream.daemon.gateway.exports import csv_chunk, csv_fields


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
    text = csv_chunk([plain.to_json(), b"not json", odd.to_json()]).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [plain.csv_row(), odd.csv_row()]  # the bad record is skipped
