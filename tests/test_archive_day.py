"""Issue 13's "done when": a daemon run for a simulated day keeps every snapshot.

The embedded daemon's analysis and gateway roles, built for real; the day is published on the
bus as the orderbook role would (a tick of two pairs a second, stamped across 2023-11-14 UTC:
the snapshots carry the clock, so the day passes as fast as the pipeline takes it), and goes
the real way: bus → history writer → SQLite window store (10,000 rows a pair) → the archive's
roller, which cuts an hourly Parquet file from the store. Then:

* the history endpoint (what ``kms history PAIR --since --until`` calls) answers every hour
  of both pairs with its 3,600 rows, marked ``gap_before`` exactly where the test made gaps
  (a publisher's flag, a restart with a new origin at an hour boundary), whether the hour
  comes from the store or the archive;
* DuckDB reads the folder with the documented glob and its mids equal the API's, row by row;
* the bytes a depth-10 snapshot costs on disk are measured and printed (``pytest -s``).

The books: one simulated hour per pair at 3 book updates a second (``bench/archive.py``'s
reference rate), repeated every hour of the day with the day's times and seqs: each hourly
file holds an hour of realistic books, so its size is what such an hour costs.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import orjson
import pytest

from archive_support import DAY0, sim_snapshots
from gateway_support import eventually, login, settings_for, stack
from krakenstream.core.snapshot import Snapshot

pytestmark = pytest.mark.slow

HOUR = 3_600
DAY = 24 * HOUR
PAIRS = ("ETH/USD", "DOGE/USD")
#: snapshots published between two waits for the history writer (the bus queue holds more)
CHUNK = 8_000
#: where the test makes gaps: the publisher's flag (a resync) ...
FLAGGED = {("ETH/USD", 3 * HOUR + 1200), ("DOGE/USD", 22 * HOUR + 59 * 60 + 59)}
#: ... and a restart (a new origin, seq from 0) at the start of an hour (the first row of a file)
RESTART = ("DOGE/USD", 7 * HOUR)


def day_of(pair: str) -> list[Snapshot]:
    """The day's snapshots of ``pair`` (see the module)."""
    hour = list(sim_snapshots(pair, HOUR, rate=3, origin="run1"))
    out = []
    origin, seq = "run1", 0
    for i in range(DAY):
        if (pair, i) == RESTART:
            origin, seq = "run2", 0
        ts = DAY0 + i * 1000
        lag_us = i * 7_919 % 1_000_000  # Kraken's last update, up to a second before the tick
        exchange = datetime.fromtimestamp((ts * 1000 - lag_us) / 1e6, UTC)
        out.append(dataclasses.replace(
            hour[i % HOUR], ts=ts, seq=seq, origin=origin, gap_before=(pair, i) in FLAGGED,
            exchange_ts=exchange.strftime("%Y-%m-%dT%H:%M:%S.%fZ")))
        seq += 1
    return out


def marked_seconds(pair: str) -> set[int]:
    """The seconds of the day whose snapshot the history must mark."""
    return {i for p, i in FLAGGED if p == pair} | ({RESTART[1]} if RESTART[0] == pair else set())


async def test_a_simulated_day_is_kept_whole(kms_home: Path) -> None:
    days = {pair: day_of(pair) for pair in PAIRS}
    settings = settings_for(kms_home, KMS_BUS_QUEUE_SIZE=str(2 * CHUNK),
                            KMS_KRAKEN_PAIRS=",".join(PAIRS))
    mids: dict[str, list[str | None]] = {}
    async with stack(settings, roles=("analysis", "gateway")) as s:
        s.token = await login(s.client)
        bus, writer = s.services.bus, s.services.history_writer
        assert writer is not None and s.services.archive is not None
        published = 0

        async def stored_all() -> bool:
            return writer.stats.received >= published

        for i in range(DAY):  # a tick of every pair a second, as the orderbook role publishes
            for pair in PAIRS:
                await bus.publish(days[pair][i])
            published += len(PAIRS)
            if published % CHUNK == 0 or i == DAY - 1:
                await eventually(stored_all, within=120)
        assert writer.stats.stored == 2 * DAY  # nothing dropped, nothing twice

        for pair in PAIRS:  # every hour, as kms history --since --until asks for it
            mids[pair] = []
            marks: set[int] = set()
            for h in range(24):
                lo = DAY0 + h * HOUR * 1000
                r = await s.client.get(
                    f"/api/analysis/history/{pair.replace('/', '-')}", headers=s.auth,
                    params={"since": lo, "until": lo + HOUR * 1000 - 1, "order": "asc",
                            "format": "ndjson"})
                rows = [orjson.loads(line) for line in r.content.splitlines()]
                assert [row["ts"] for row in rows] == [lo + k * 1000 for k in range(HOUR)], (
                    pair, h)
                marks |= {(row["ts"] - DAY0) // 1000 for row in rows if row["gap_before"]}
                mids[pair] += [row["mid"] for row in rows]
            assert marks == marked_seconds(pair), pair
        store = s.services.store
        assert store is not None
        (oldest,) = [x async for x in store.history(PAIRS[0], order="asc", limit=1)]
        assert oldest.ts > DAY0 + 20 * HOUR * 1000  # most hours came from the archive
    # the daemon stopped: its roller cut the last, open hour too

    root = s.services.archive.root
    got = duckdb.sql(
        f"SELECT pair, mid FROM read_parquet('{root}/**/*.parquet', hive_partitioning=true, "
        "union_by_name=true) ORDER BY pair, time").fetchall()
    for pair in PAIRS:  # the whole folder's mids take the finest scale: equal as numbers
        theirs = [mid for p, mid in got if p == pair]
        assert theirs == [None if m is None else Decimal(m) for m in mids[pair]], pair

    print()
    for pair in PAIRS:
        usage = s.services.archive.usage(pair)
        files = sum(u.files for u in usage)
        size = sum(u.bytes for u in usage)
        print(f"{pair}: {files} files, {size:,} bytes on disk for {DAY:,} depth-10 "
              f"snapshots: {size / DAY:.1f} B a snapshot")
        assert files == 24 and size / DAY <= 120
