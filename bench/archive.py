"""Parquet archive benchmark: bytes on disk, write cost, a day's query and a day's CSV export.

Books are the simulator's (``krakenstream.sim.market``): each pair's book moved by about
``--rate`` random updates a second (most at the touch), snapshotted once a second at depth 10,
with Kraken-like exchange timestamps. Figures:

* bytes per depth-10 snapshot on disk: one hourly file (3,600 snapshots) per pair, footer
  included, at ``--rate`` and at 3 updates a second;
* archive write cost per snapshot: ``Archive.write`` of an hour (Arrow conversion, Parquet
  encoding, zstd, fsync, rename), and the whole roller path the daemon runs (the hour read
  back from a SQLite window store, then written);
* DuckDB over one pair's day (24 hourly files among other pairs' files): a count / min / max /
  mean query, via the Hive glob with a partition filter;
* a day (86,400 snapshots) exported to one wide CSV file: through the history that spans
  the store and the archive (``SpanningHistory.tables`` + ``store.archive.text``, what the
  gateway runs for ``kms export --csv``), the row-at-a-time path it replaced
  (``Archive.chunks`` + ``core.wide``), and DuckDB's COPY.

Run: ``.venv/bin/python bench/archive.py [--quick] [--rate 10] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from archive_support import DAY0, sim_snapshots  # noqa: E402
from krakenstream.core.wide import wide_columns, wide_row  # noqa: E402
from krakenstream.store.archive import Archive, ArchiveRoller  # noqa: E402
from krakenstream.store.archive.columns import to_table  # noqa: E402
from krakenstream.store.archive.files import PRICE_METRICS, column_encodings  # noqa: E402
from krakenstream.store.archive.text import header, wide_csv  # noqa: E402
from krakenstream.store.span import SpanningHistory  # noqa: E402
from krakenstream.store.sqlite import SQLiteHistoryStore  # noqa: E402

SIZE_PAIRS = ("BTC/USD", "ETH/USD", "SOL/USD", "DOGE/USD", "XRP/USD", "PEPE/USD")
HOUR = 3600


def best_of(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def sizes(root: Path, rate: float, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    archive = Archive(root / f"size-{rate}", writer_id="bench")
    for pair in SIZE_PAIRS:
        (f,) = archive.write(list(sim_snapshots(pair, n, rate=rate)))
        out[pair] = f.path.stat().st_size / n
    return out


def _variant_bytes(table: Any, *, level: int, enc: dict[str, str], dictionary: list[str],
                   schema: bool) -> int:
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd", compression_level=level,
                   use_dictionary=dictionary, store_decimal_as_integer=True,
                   column_encoding=enc, write_statistics=["time", "seq"], store_schema=schema)
    return len(out.getvalue())


def encodings(rate: float, n: int) -> dict[str, dict[str, float]]:
    """Bytes per snapshot of an hour file under each way of writing it that was tried: the
    archive's first (delta-packed prices, zstd 9, the Arrow schema in the footer), each step
    to today's, today's, and what was tried and left out."""
    out: dict[str, dict[str, float]] = {}
    for pair in SIZE_PAIRS:
        table = to_table(list(sim_snapshots(pair, n, rate=rate)), 10)
        now = column_encodings(table)
        names = table.column_names
        prices = [c for c in names if "_price_" in c or c in PRICE_METRICS]
        qtys = [c for c in names if "_qty_" in c]
        first = {**{k: v for k, v in now.items() if k != "imbalance"},
                 **{c: "DELTA_BINARY_PACKED" for c in prices}}
        variants: dict[str, dict[str, Any]] = {
            "first (delta prices, zstd 9)": dict(level=9, enc=first, schema=True),
            "+ zstd 15": dict(level=15, enc=first, schema=True),
            "+ byte-stream-split prices": dict(
                level=15, enc={**first, **{c: "BYTE_STREAM_SPLIT" for c in prices}},
                schema=True),
            "+ delta imbalance": dict(level=15, enc=now, schema=True),
            "+ no Arrow schema (today)": dict(level=15, enc=now, schema=False),
            "today, zstd 19": dict(level=19, enc=now, schema=False),
            "today, zstd 22": dict(level=22, enc=now, schema=False),
            "today, delta sizes": dict(
                level=15, enc={**now, **{c: "DELTA_BINARY_PACKED" for c in qtys}},
                schema=False),
            "today, byte-stream-split sizes": dict(
                level=15, enc={**now, **{c: "BYTE_STREAM_SPLIT" for c in qtys}},
                schema=False),
        }
        row = {name: _variant_bytes(table, dictionary=["origin"], **v) / n
               for name, v in variants.items()}
        row["today, dictionary sizes"] = _variant_bytes(
            table, level=15, enc=now, schema=False,
            dictionary=["origin", *qtys]) / n
        out[pair] = row
    return out


def write_cost(root: Path, rate: float, n: int, runs: int) -> float:
    snaps = list(sim_snapshots("ETH/USD", n, rate=rate))
    archive = Archive(root / "write", writer_id="bench")
    return best_of(lambda: archive.write(snaps), runs) / n


async def roller_cost(root: Path, rate: float, n: int) -> float:
    """Seconds per snapshot for the roller's cut: read back from SQLite, write the file."""
    snaps = list(sim_snapshots("ETH/USD", n + 1, rate=rate))
    store = SQLiteHistoryStore(root / "roller.sqlite3", history_limit=10_000)
    await store.open()
    try:
        await store.add(snaps)
        roller = ArchiveRoller(Archive(root / "roller", writer_id="bench"), store,
                               history_limit=10_000)
        t = time.perf_counter()
        await roller.start()  # cuts the complete hour before the newest row
        await roller.idle()
        elapsed = time.perf_counter() - t
        await roller.stop(cut=False)
    finally:
        await store.close()
    return elapsed / n


def make_day(root: Path, rate: float, n: int) -> Archive:
    archive = Archive(root / "day", writer_id="bench")
    for pair in ("ETH/USD", "BTC/USD", "SOL/USD"):
        snaps = sim_snapshots(pair, n, rate=rate)
        hour: list[Any] = []
        for s in snaps:
            hour.append(s)
            if len(hour) == HOUR:
                archive.write(hour)
                hour = []
        if hour:
            archive.write(hour)
    return archive


def duckdb_day(archive: Archive, runs: int) -> tuple[float, int]:
    con = duckdb.connect()
    sql = (f"SELECT count(*), min(mid), max(mid), avg(spread_bps) FROM read_parquet("
           f"'{archive.root}/**/*.parquet', hive_partitioning=true, union_by_name=true) "
           "WHERE pair = 'ETH/USD' AND date = DATE '2023-11-14'")
    rows = con.sql(sql).fetchall()
    return best_of(lambda: con.sql(sql).fetchall(), runs), int(rows[0][0])


async def _export(history: SpanningHistory, out: Path) -> None:
    with await asyncio.to_thread(out.open, "wb") as fh:
        fh.write(header(10))
        async for table in history.tables("ETH/USD", since=DAY0, until=DAY0 + 86_399_999,
                                          order="asc"):
            fh.write(await asyncio.to_thread(wide_csv, table, 10))


def csv_day(archive: Archive, root: Path, runs: int) -> tuple[float, float, float, int]:
    """A day to wide CSV: what the gateway runs for ``kms export --csv`` (the archive's
    tables, marked, written a column at a time), the row-at-a-time path it replaced, DuckDB."""
    out = root / "day.csv"

    async def ours() -> None:
        store = SQLiteHistoryStore(root / "empty.sqlite3", history_limit=10_000)
        await store.open()
        try:
            await _export(SpanningHistory(store, archive), out)
        finally:
            await store.close()

    t_ours = best_of(lambda: asyncio.run(ours()), runs)
    size = out.stat().st_size

    def rows() -> None:
        with open(root / "rows.csv", "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(wide_columns(10))
            for chunk in archive.chunks("ETH/USD", DAY0, DAY0 + 86_399_999):
                w.writerows(wide_row(s, 10) for s in chunk)

    t_rows = best_of(rows, 1)
    con = duckdb.connect()
    copy = (f"COPY (SELECT * FROM read_parquet('{archive.root}/pair=ETH%2FUSD/**/*.parquet') "
            f"ORDER BY time) TO '{root}/duck.csv' (HEADER)")
    t_duck = best_of(lambda: con.sql(copy), runs)
    return t_ours, t_rows, t_duck, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 2-hour day, one run each")
    ap.add_argument("--rate", type=float, default=10.0, help="book updates a second per pair")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--encodings", action="store_true",
                    help="only the bytes per snapshot of each way of writing a file tried")
    args = ap.parse_args()
    if args.encodings:
        found = encodings(args.rate, HOUR)
        if args.json:
            print(json.dumps(found, indent=2))
            return
        print(f"bytes per depth-10 snapshot of an hour file, {args.rate:g} updates/s")
        for name in next(iter(found.values())):
            row = ", ".join(f"{p} {found[p][name]:.1f}" for p in found)
            print(f"{name}: {row}")
        return
    runs = 1 if args.quick else 3
    day_n = 2 * HOUR if args.quick else 86_400
    figures: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                               "rate": args.rate}
    with tempfile.TemporaryDirectory(prefix="kms-bench-archive-") as tmp:
        root = Path(tmp)
        figures["bytes_per_snapshot"] = sizes(root, args.rate, HOUR)
        figures["bytes_per_snapshot_rate3"] = sizes(root, 3.0, HOUR)
        figures["write_us_per_snapshot"] = write_cost(root, args.rate, HOUR, runs) * 1e6
        figures["roller_us_per_snapshot"] = asyncio.run(roller_cost(root, args.rate, HOUR)) * 1e6
        archive = make_day(root, args.rate, day_n)
        day_bytes = sum(u.bytes for u in archive.usage("ETH/USD"))
        figures["day_files"] = len(archive.files("ETH/USD", 0, 2**53))
        figures["day_bytes"] = day_bytes
        figures["duckdb_day_s"], figures["duckdb_day_rows"] = duckdb_day(archive, runs)
        ours, rows, duck, size = csv_day(archive, root, runs)
        figures["csv_day_s"], figures["csv_rows_day_s"] = ours, rows
        figures["duckdb_csv_day_s"], figures["csv_day_bytes"] = duck, size
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"python {figures['python']}, {figures['cpus']} cpus, sim rate {args.rate}/s")
    for key, rate in (("bytes_per_snapshot", args.rate), ("bytes_per_snapshot_rate3", 3.0)):
        row = ", ".join(f"{p} {v:.1f}" for p, v in figures[key].items())
        print(f"bytes per depth-10 snapshot at {rate:g} updates/s: {row} "
              f"(median {statistics.median(figures[key].values()):.1f})")
    print(f"Archive.write: {figures['write_us_per_snapshot']:.1f} us/snapshot")
    print(f"roller (SQLite read-back + write): {figures['roller_us_per_snapshot']:.1f} "
          "us/snapshot")
    print(f"one pair's day: {figures['day_files']} files, {figures['day_bytes']:,} bytes")
    print(f"DuckDB count/min/max/avg over the day ({figures['duckdb_day_rows']:,} rows): "
          f"{figures['duckdb_day_s'] * 1000:.1f} ms")
    print(f"day to wide CSV ({figures['csv_day_bytes']:,} bytes): krakenstream "
          f"{figures['csv_day_s']:.2f} s (row at a time: {figures['csv_rows_day_s']:.2f} s), "
          f"DuckDB COPY {figures['duckdb_csv_day_s']:.2f} s")


if __name__ == "__main__":
    main()
