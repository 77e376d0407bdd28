"""``daemon/gateway/usage.py``: the archive's disk use per pair and per UTC day, counted in a
worker thread at most once per TTL and shared by the requests that ask meanwhile."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

from krakenstream.core.snapshot import Snapshot
from krakenstream.daemon.gateway.usage import ArchiveUsage, Usage
from krakenstream.store.archive import Archive, DayUsage
from test_store_support import synthetic

D1, D2, D3 = date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)


def test_per_pair_and_per_day_sums() -> None:
    usage = Usage.of([DayUsage("BTC/USD", D1, 24, 1000), DayUsage("BTC/USD", D2, 12, 501),
                      DayUsage("ETH/USD", D2, 3, 30)])
    assert usage.pair("BTC/USD") == {"archive_bytes": 1501, "archive_days": 2,
                                     "archive_bytes_per_day": 750}
    assert usage.pair("SOL/USD") == {"archive_bytes": 0, "archive_days": 0,
                                     "archive_bytes_per_day": 0}  # nothing archived: no 0/0
    assert usage.health("/a") == {
        "path": "/a", "bytes": 1531, "files": 39, "pairs": 2,
        "days": [{"date": "2026-11-25", "bytes": 531, "files": 15, "pairs": 2},
                 {"date": "2026-11-24", "bytes": 1000, "files": 24, "pairs": 1}]}


def test_health_lists_the_newest_days_only() -> None:
    usage = Usage.of([DayUsage("BTC/USD", d, 1, 1) for d in (D1, D3, D2)])
    assert [d["date"] for d in usage.health("/a", newest=2)["days"]] == [
        "2026-11-26", "2026-11-25"]
    assert usage.health("/a", newest=2)["bytes"] == 3  # the totals count every day


async def test_one_count_per_ttl_shared_by_whoever_asks(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive", writer_id="w1")
    hour: list[Snapshot] = [synthetic("BTC/USD", 1_795_600_800_000 + i * 1000, i)
                            for i in range(5)]
    archive.write(hour)
    now = [100.0]
    counted = ArchiveUsage(archive, ttl=60, clock=lambda: now[0])
    first, again = await asyncio.gather(counted.get(), counted.get())
    assert first is again  # asked together: counted once
    assert first.pair("BTC/USD")["archive_days"] == 1
    archive.write([synthetic("ETH/USD", 1_795_600_800_000, 0)])
    now[0] += 59.9
    assert await counted.get() is first  # within the TTL: the count is reused
    now[0] += 0.1
    fresh = await counted.get()
    assert fresh is not first and set(fresh.per_pair) == {"BTC/USD", "ETH/USD"}
