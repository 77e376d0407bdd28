"""The history endpoint spans the window store and the Parquet archive (issue 13)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from archive_support import DAY0
from gateway_support import login, settings_for, stack
from test_store_support import synthetic

HOLE = 5_000  # a seq never published: the snapshot after it is marked


@pytest.mark.slow
async def test_an_hour_below_the_window_comes_from_the_archive(kms_home: Path) -> None:
    settings = settings_for(kms_home, KMS_STORE_HISTORY_LIMIT="2000")
    async with stack(settings, roles=("analysis", "gateway")) as s:
        s.token = await login(s.client)
        services = s.services
        assert services.store is not None and services.roller is not None
        snaps = [dataclasses.replace(synthetic("ETH/USD", DAY0 + i * 1000, i), origin="o1")
                 for i in range(3 * 3600) if i != HOLE]
        for i in range(0, len(snaps), 500):  # what the history writer does with each batch
            await services.store.add(snaps[i:i + 500])
            services.roller.note(snaps[i:i + 500])
            await services.roller.keep_up()
        await services.roller.idle()
        hour = (DAY0 + 3600_000, DAY0 + 2 * 3600_000 - 1)  # below the store's 2,000 rows
        r = await s.client.get("/api/analysis/history/ETH-USD", headers=s.auth,
                               params={"since": hour[0], "until": hour[1], "order": "asc"})
        assert r.status_code == 200, r.text
        rows = r.json()["snapshots"]
        assert len(rows) == 3599  # 3,600 seconds less the one never published
        assert [row["ts"] for row in rows] == [t for t in range(hour[0], hour[1] + 1, 1000)
                                               if t != DAY0 + HOLE * 1000]
        assert [row["seq"] for row in rows if row["gap_before"]] == [HOLE + 1]
        # the whole series across the store/archive boundary, newest first, continuous
        r = await s.client.get("/api/analysis/history/ETH-USD", headers=s.auth,
                               params={"since": DAY0, "format": "ndjson"})
        seqs = [int(line.split(b'"seq":')[1].split(b",")[0]) for line in r.content.splitlines()]
        assert seqs == [x.seq for x in reversed(snaps)]
        csv = await s.client.get("/api/analysis/history/ETH-USD", headers=s.auth,
                                 params={"since": hour[0], "until": hour[1], "format": "csv"})
        assert csv.status_code == 200 and len(csv.text.splitlines()) == 3600  # header + rows


@pytest.mark.slow
async def test_the_archives_disk_use_in_pairs_and_health(kms_home: Path) -> None:
    settings = settings_for(kms_home, KMS_STORE_HISTORY_LIMIT="2000")
    async with stack(settings, roles=("analysis", "gateway")) as s:
        s.token = await login(s.client)
        services = s.services
        assert services.store is not None and services.roller is not None
        day1 = DAY0 + 86_400_000 - 900_000  # a quarter of an hour before midnight, one after
        snaps = [synthetic("ETH/USD", day1 + i * 1000, i) for i in range(1800)]
        await services.store.add(snaps)
        services.roller.note(snaps)
        await services.roller.stop()  # cuts everything, the open roll too
        assert services.archive is not None
        usage = services.archive.usage("ETH/USD")
        sizes = {u.day.isoformat(): u.bytes for u in usage}
        assert list(sizes) == ["2023-11-14", "2023-11-15"]
        assert [u.files for u in usage] == [1, 1]
        r = await s.client.get("/api/pairs", headers=s.auth)
        (entry,) = r.json()["pairs"]
        assert entry["archive_bytes"] == sum(sizes.values()) and entry["archive_days"] == 2
        assert entry["archive_bytes_per_day"] == sum(sizes.values()) // 2
        health = (await s.client.get("/health")).json()["archive"]
        assert health["bytes"] == sum(sizes.values()) and health["pairs"] == 1
        assert health["days"] == [
            {"date": u.day.isoformat(), "bytes": u.bytes, "files": u.files, "pairs": 1}
            for u in reversed(usage)]
        assert health["writer"]["rows"] == 1800
