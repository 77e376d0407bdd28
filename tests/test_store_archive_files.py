"""The Parquet archive's folder (store/archive/files.py, columns.py, layout.py)."""

from __future__ import annotations

import dataclasses
import os
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

from archive_support import DAY0, sim_snapshots
from krakenstream.core.numbers import to_decimal
from krakenstream.core.snapshot import METRIC_COLUMNS, Snapshot, metric_scales
from krakenstream.core.wide import level_columns
from krakenstream.store.archive import Archive

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def expected_row(s: Snapshot, depth: int) -> dict[str, object]:
    """What one snapshot must read back as, column by column, with exact Decimals."""
    row: dict[str, object] = {
        "time": pd.Timestamp(s.ts, unit="ms", tz="UTC"), "seq": s.seq, "origin": s.origin,
        "gap_before": s.gap_before, "checksum": s.checksum, "exchange_ts": s.exchange_ts,
    }
    for name, scale, v in zip(METRIC_COLUMNS, metric_scales(s.price_precision),
                              s.metrics_scaled(), strict=True):
        row[name] = None if v is None else to_decimal(v, scale)
    for side, levels in (("bid", s.bids), ("ask", s.asks)):
        for i in range(depth):
            p, q = levels[i] if i < len(levels) else (None, None)
            row[f"{side}_price_{i + 1}"] = None if p is None else to_decimal(p, s.price_precision)
            row[f"{side}_qty_{i + 1}"] = None if q is None else to_decimal(q, s.qty_precision)
    return row


@pytest.mark.slow
def test_round_trip_to_pandas_is_exact(tmp_path: Path) -> None:
    snaps = list(sim_snapshots("ETH/USD", 1200))
    thin = dataclasses.replace(snaps[5], bids=snaps[5].bids[:3], asks=(), gap_before=True)
    snaps[5] = thin
    archive = Archive(tmp_path, writer_id="w1")
    archive.write(snaps)
    df = pd.read_parquet(tmp_path / "pair=ETH%2FUSD")
    assert len(df) == len(snaps)
    columns = ["time", "seq", "origin", "gap_before", "checksum", "exchange_ts",
               *METRIC_COLUMNS, *level_columns(10)]
    assert list(df.columns)[:len(columns)] == columns
    for s, (_, got) in zip(snaps, df.iterrows(), strict=True):
        want = expected_row(s, 10)
        have = {k: (None if got[k] is None or (not isinstance(got[k], Decimal | str)
                                               and pd.isna(got[k])) else got[k]) for k in want}
        assert have == want
    assert isinstance(df["bid_price_1"].iloc[0], Decimal)


def test_round_trip_to_snapshots_is_exact(tmp_path: Path) -> None:
    snaps = list(sim_snapshots("PEPE/USD", 500)) + list(
        sim_snapshots("BTC/USD", 500, start=DAY0 + DAY_MS - 250_000))
    archive = Archive(tmp_path, writer_id="w1")
    files = archive.write(snaps)
    # BTC's 500 seconds straddle midnight: one file per date
    assert sorted((f.pair, f.day.isoformat()) for f in files) == [
        ("BTC/USD", "2023-11-14"), ("BTC/USD", "2023-11-15"), ("PEPE/USD", "2023-11-14")]
    for pair in ("PEPE/USD", "BTC/USD"):
        back = [s for chunk in archive.chunks(pair, 0, 2**53) for s in chunk]
        assert back == [s for s in snaps if s.pair == pair]
    assert archive.pairs() == ["BTC/USD", "PEPE/USD"]


def test_a_value_of_more_than_18_digits_is_kept_exact(tmp_path: Path) -> None:
    s = next(sim_snapshots("ETH/USD", 1))
    huge = dataclasses.replace(s, bids=((s.bids[0][0], 10**24), *s.bids[1:]))
    archive = Archive(tmp_path, writer_id="w1")
    (f,) = archive.write([huge, dataclasses.replace(s, ts=s.ts + 1000)])
    assert str(pq.read_schema(f.path).field("bid_qty_1").type) == "decimal128(38, 8)"
    assert archive.read_file(f)[0] == huge
    got = duckdb.sql(f"SELECT bid_qty_1 FROM read_parquet('{f.path}') ORDER BY time").fetchall()
    assert got[0][0] == Decimal(10**24).scaleb(-8)


def test_a_precision_change_starts_another_file(tmp_path: Path) -> None:
    a, b = sim_snapshots("ETH/USD", 2)
    b = dataclasses.replace(b, price_precision=3, bids=tuple((p * 10, q) for p, q in b.bids),
                            asks=tuple((p * 10, q) for p, q in b.asks))
    archive = Archive(tmp_path, writer_id="w1")
    assert len(archive.write([a, b])) == 2
    assert [s for c in archive.chunks("ETH/USD", 0, 2**53) for s in c] == [a, b]


def test_range_reads_prune_and_filter(tmp_path: Path) -> None:
    archive = Archive(tmp_path, writer_id="w1")
    snaps = list(sim_snapshots("ETH/USD", 3 * 600, step=6000, rate=1))  # 3 hours
    for h in range(3):
        archive.write([s for s in snaps if DAY0 + h * HOUR_MS <= s.ts < DAY0 + (h + 1) * HOUR_MS])
    lo, hi = DAY0 + HOUR_MS + 30_000, DAY0 + HOUR_MS + 90_000
    assert [f.first_ts for f in archive.files("ETH/USD", lo, hi)] == [DAY0 + HOUR_MS]
    asc = [s.ts for c in archive.chunks("ETH/USD", lo, hi) for s in c]
    assert asc == list(range(lo, hi + 1, 6000))
    desc = [s.ts for c in archive.chunks("ETH/USD", DAY0, DAY0 + 3 * HOUR_MS, "desc") for s in c]
    assert desc == sorted((s.ts for s in snaps), reverse=True)
    before = archive.before("ETH/USD", DAY0 + HOUR_MS)
    assert before is not None and before.ts == DAY0 + HOUR_MS - 6000
    assert archive.before("ETH/USD", DAY0) is None
    assert archive.newest_ts("ETH/USD") == snaps[-1].ts
    assert archive.newest_ts("BTC/USD") is None


def test_overlapping_files_of_two_writers_read_once(tmp_path: Path) -> None:
    snaps = list(sim_snapshots("ETH/USD", 100))
    Archive(tmp_path, writer_id="aaa").write(snaps[:60])
    Archive(tmp_path, writer_id="bbb").write(snaps[40:])
    archive = Archive(tmp_path)
    assert len(archive.files("ETH/USD", 0, 2**53)) == 2
    assert [s for c in archive.chunks("ETH/USD", 0, 2**53) for s in c] == snaps
    assert [s for c in archive.chunks("ETH/USD", 0, 2**53, "desc") for s in c] == snaps[::-1]


def test_temp_and_foreign_files_are_invisible(tmp_path: Path) -> None:
    archive = Archive(tmp_path, writer_id="w1")
    (f,) = archive.write(list(sim_snapshots("ETH/USD", 10)))
    tmp = f.path.parent / f".{f.path.name}.abc.tmp"
    tmp.write_bytes(b"PAR1 half a file")
    assert len(pd.read_parquet(tmp_path / "pair=ETH%2FUSD")) == 10
    (f.path.parent / "notes.parquet").write_text("not ours")  # a name that is not ours
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{tmp_path}/**/*-*.parquet')").fetchall()
    assert n == [(10,)]
    assert [x.path for x in archive.files("ETH/USD", 0, 2**53)] == [f.path]
    assert archive.clean_temp() == 0  # fresh: it may belong to a live writer
    old = time.time() - 7200
    os.utime(tmp, (old, old))
    assert archive.clean_temp() == 1 and not tmp.exists()


def test_retention_removes_whole_days_and_usage_counts_bytes(tmp_path: Path) -> None:
    archive = Archive(tmp_path, writer_id="w1")
    for d in range(4):  # 2023-11-14 .. 2023-11-17
        archive.write(list(sim_snapshots("ETH/USD", 5, start=DAY0 + d * DAY_MS)))
        archive.write(list(sim_snapshots("BTC/USD", 5, start=DAY0 + d * DAY_MS)))
    usage = archive.usage()
    assert len(usage) == 8 and all(u.files == 1 and u.bytes > 0 for u in usage)
    assert archive.prune(0, date(2023, 11, 30)) == []
    removed = archive.prune(2, date(2023, 11, 18))  # keeps the 16th and later
    assert sorted(removed) == [
        ("BTC/USD", date(2023, 11, 14)), ("BTC/USD", date(2023, 11, 15)),
        ("ETH/USD", date(2023, 11, 14)), ("ETH/USD", date(2023, 11, 15))]
    assert sorted({u.day for u in archive.usage()}) == [date(2023, 11, 16), date(2023, 11, 17)]
    assert [u.pair for u in archive.usage("ETH/USD")] == ["ETH/USD", "ETH/USD"]


def test_duckdb_and_polars_read_the_folder_and_their_mids_equal_ours(tmp_path: Path) -> None:
    archive = Archive(tmp_path, writer_id="w1")
    snaps = list(sim_snapshots("PEPE/USD", 300)) + list(sim_snapshots("BTC/USD", 300))
    archive.write(snaps)
    ours = {(s.pair, s.ts): s.mid for s in snaps}
    rows = duckdb.sql(
        f"SELECT pair, epoch_ms(time), mid FROM read_parquet('{tmp_path}/**/*.parquet', "
        "hive_partitioning=true, union_by_name=true)").fetchall()
    assert {(p, ts): mid for p, ts, mid in rows} == ours
    # polars refuses (rightly) to merge two scales into one column: one pair's folder at a time
    df = pl.scan_parquet(f"{tmp_path}/pair=PEPE%2FUSD/**/*.parquet").select("time", "mid").collect()
    assert [Decimal(str(m)) for m in df["mid"].to_list()] == [
        s.mid for s in snaps if s.pair == "PEPE/USD"]
