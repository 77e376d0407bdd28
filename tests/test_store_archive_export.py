"""One Parquet file of a series (store/archive/export.py): exact, whatever layouts it mixes."""

from __future__ import annotations

import dataclasses
import io
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archive_support import sim_snapshots
from krakenstream.core.numbers import to_decimal
from krakenstream.core.snapshot import Snapshot
from krakenstream.store.archive import export
from krakenstream.store.archive.columns import from_table
from krakenstream.store.archive.export import ParquetSink, parquet_bytes, series_table


def read(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def test_one_layout_reads_back_as_the_snapshots() -> None:
    snaps = list(sim_snapshots("ETH/USD", 500))
    table = read(parquet_bytes(snaps, 10))
    assert table.column_names[:3] == ["time", "pair", "seq"]
    assert from_table(table, "ETH/USD") == snaps


def test_several_pairs_precisions_and_depths_in_one_file_stay_exact(tmp_path: Path) -> None:
    eth = list(sim_snapshots("ETH/USD", 300))  # prices at 2 decimals
    pepe = list(sim_snapshots("PEPE/USD", 200))  # prices at 10 decimals
    deep = [dataclasses.replace(s, bids=(*s.bids, (s.bids[-1][0] - 1000, 7)))
            for s in sim_snapshots("ETH/USD", 50, start=eth[-1].ts + 1000)]  # 11 levels
    out = io.BytesIO()
    sink = ParquetSink(out)
    sink.write(series_table(eth, 10))
    sink.write(series_table(pepe, 10))
    sink.write(series_table(deep, 10))
    sink.close()
    table = read(out.getvalue())
    assert table.num_rows == sink.rows == 550
    assert "bid_price_11" in table.column_names and "ask_price_11" in table.column_names
    assert table.column_names.index("bid_qty_11") < table.column_names.index("ask_price_1")
    rows = table.to_pylist()
    for snap, row in zip([*eth, *pepe, *deep], rows, strict=True):
        assert row["pair"] == snap.pair and row["seq"] == snap.seq
        for i, (p, q) in enumerate(snap.bids, 1):
            assert row[f"bid_price_{i}"] == to_decimal(p, snap.price_precision)
            assert row[f"bid_qty_{i}"] == to_decimal(q, snap.qty_precision)
        assert row["mid"] == snap.mid
    assert rows[0]["bid_price_11"] is None
    # DuckDB reads it as it is
    (tmp_path / "x.parquet").write_bytes(out.getvalue())
    got = duckdb.sql(f"SELECT pair, count(*), min(mid) FROM read_parquet('{tmp_path}/x.parquet')"
                     " GROUP BY pair ORDER BY pair").fetchall()
    assert got == [("ETH/USD", 350, min(s.mid for s in [*eth, *deep] if s.mid)),
                   ("PEPE/USD", 200, min(s.mid for s in pepe if s.mid))]
    assert isinstance(got[1][2], Decimal)


def test_row_groups_and_an_empty_series(monkeypatch: pytest.MonkeyPatch) -> None:
    snaps: list[Snapshot] = list(sim_snapshots("BTC/USD", 700))
    monkeypatch.setattr(export, "ROW_GROUP_ROWS", 256)
    out = io.BytesIO()
    sink = ParquetSink(out)
    for i in range(0, 700, 100):
        sink.write(series_table(snaps[i:i + 100], 10))
    sink.close()
    assert pq.ParquetFile(io.BytesIO(out.getvalue())).num_row_groups == 3
    assert from_table(read(out.getvalue()), "BTC/USD") == snaps
    empty = io.BytesIO()
    ParquetSink(empty).close(depth=3)
    table = read(empty.getvalue())
    assert table.num_rows == 0 and "ask_qty_3" in table.column_names

