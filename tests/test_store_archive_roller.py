"""The archive roller: what the window store accepted, cut into files (store/archive/roller)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from archive_support import DAY0, sim_snapshots
from krakenstream.core.snapshot import Snapshot
from krakenstream.store.archive import Archive, ArchiveRoller
from krakenstream.store.archive.roller import split_rolls
from krakenstream.store.sqlite import SQLiteHistoryStore
from test_store_support import synthetic

HOUR_MS = 3_600_000


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteHistoryStore]:
    s = SQLiteHistoryStore(tmp_path / "history.sqlite3", history_limit=10_000)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def feed(store: SQLiteHistoryStore, roller: ArchiveRoller, snaps: Sequence[Snapshot],
               batch: int = 500) -> None:
    """What the history writer does: store a batch, note it, keep up."""
    for i in range(0, len(snaps), batch):
        chunk = snaps[i:i + batch]
        await store.add(chunk)
        roller.note(chunk)
        await roller.keep_up()


def archived(archive: Archive, pair: str) -> list[Snapshot]:
    return [s for c in archive.chunks(pair, -(2**53), 2**53) for s in c]


def test_split_rolls_cuts_at_windows_and_sizes() -> None:
    snaps = [synthetic("X/USD", DAY0 + i * 1000) for i in range(10)]
    assert [len(c) for c in split_rolls(snaps, 4000, 100)] == [4, 4, 2]
    assert [len(c) for c in split_rolls(snaps, HOUR_MS, 3)] == [3, 3, 3, 1]


@pytest.mark.slow
async def test_a_simulated_day_gives_24_hourly_files(tmp_path: Path,
                                                     store: SQLiteHistoryStore) -> None:
    archive = Archive(tmp_path / "archive", writer_id="w1")
    roller = ArchiveRoller(archive, store, history_limit=10_000)
    await roller.start()
    day = [synthetic("BTC/USD", DAY0 + i * 1000, i) for i in range(86_400)]
    other = [synthetic("ETH/USD", DAY0 + i * 1000, i) for i in range(3 * 3600 + 10)]
    await feed(store, roller, sorted(day + other, key=lambda s: s.ts))
    # the next day's first snapshot closes the last hour; stop() cuts the open roll
    await feed(store, roller, [synthetic("BTC/USD", DAY0 + 86_400_000, 86_400)])
    await roller.stop()
    files = archive.files("BTC/USD", DAY0, DAY0 + 86_399_999)
    assert len(files) == 24
    assert [f.first_ts for f in files] == [DAY0 + h * HOUR_MS for h in range(24)]
    assert all(f.day.isoformat() == "2023-11-14" for f in files)
    assert archived(archive, "BTC/USD") == [*day, synthetic("BTC/USD", DAY0 + 86_400_000, 86_400)]
    assert archived(archive, "ETH/USD") == other
    assert [f.last_ts - f.first_ts for f in archive.files("ETH/USD", 0, 2**53)] == [
        HOUR_MS - 1000, HOUR_MS - 1000, HOUR_MS - 1000, 9000]
    assert roller.stats.lost_rolls == 0 and roller.stats.errors == 0


@pytest.mark.slow
async def test_a_restart_rebuilds_the_open_roll_from_the_store(
        tmp_path: Path, store: SQLiteHistoryStore) -> None:
    """A crash loses nothing: what was not cut is still in the store, and start() cuts it."""
    archive = Archive(tmp_path / "archive", writer_id="w1")
    snaps = list(sim_snapshots("ETH/USD", 2 * 3600 + 600, rate=1))
    roller = ArchiveRoller(archive, store, history_limit=10_000)
    await roller.start()
    await feed(store, roller, snaps[:5000])
    await roller.idle()
    await roller.stop(cut=False)  # a crash: hour 0 is archived, hour 1 was open
    assert archived(archive, "ETH/USD") == snaps[:3600]
    await feed(store, SQLiteLessRoller(), snaps[5000:])  # stored while nothing archived
    again = ArchiveRoller(Archive(tmp_path / "archive", writer_id="w2"), store,
                          history_limit=10_000)
    await again.start()
    await again.idle()
    assert archived(archive, "ETH/USD") == snaps[:2 * 3600]  # complete hours at once
    await again.stop()
    assert archived(archive, "ETH/USD") == snaps  # the open hour on stop


class SQLiteLessRoller(ArchiveRoller):
    """A roller that notes nothing: stands for 'the daemon crashed, nobody archived'."""

    def __init__(self) -> None:  # noqa: D107 - no archive, no store
        pass

    def note(self, snaps: Sequence[Snapshot]) -> None:
        return

    async def keep_up(self) -> None:
        return


async def test_rows_trimmed_before_archiving_are_marked(tmp_path: Path) -> None:
    store = SQLiteHistoryStore(tmp_path / "h.sqlite3", history_limit=1000)
    await store.open()
    try:
        archive = Archive(tmp_path / "archive", writer_id="w1")
        snaps = [synthetic("ETH/USD", DAY0 + i * 1000, i) for i in range(3000)]
        roller = ArchiveRoller(archive, store, history_limit=1000)
        await roller.start()
        await feed(store, roller, snaps[:600])
        await roller.stop()  # archived up to 599
        await store.add(snaps[600:3000])  # nobody archives: the store keeps 2000..2999
        again = ArchiveRoller(archive, store, history_limit=1000)
        await again.start()
        await again.stop()
        got = archived(archive, "ETH/USD")
        assert [s.ts for s in got] == [s.ts for s in snaps[:600] + snaps[2000:]]
        assert got[600].gap_before and not any(s.gap_before for s in got[601:])
        assert again.stats.lost_rolls == 1
    finally:
        await store.close()


@pytest.mark.slow
async def test_a_late_snapshot_is_archived_too(tmp_path: Path,
                                               store: SQLiteHistoryStore) -> None:
    archive = Archive(tmp_path / "archive", writer_id="w1")
    snaps = [synthetic("ETH/USD", DAY0 + i * 1000, i) for i in range(3700)]
    late = snaps.pop(100)
    roller = ArchiveRoller(archive, store, history_limit=10_000)
    await roller.start()
    await feed(store, roller, snaps)
    await roller.idle()
    assert len(archived(archive, "ETH/USD")) == 3599
    await feed(store, roller, [late])  # a redelivery, an hour late
    await roller.stop()
    assert archived(archive, "ETH/USD") == sorted([*snaps, late], key=lambda s: s.ts)
    assert roller.stats.late == 1


async def test_a_quiet_pair_is_cut_once_its_hour_is_over(tmp_path: Path,
                                                         store: SQLiteHistoryStore) -> None:
    now = [DAY0 / 1000 + 600]
    archive = Archive(tmp_path / "archive", writer_id="w1")
    roller = ArchiveRoller(archive, store, history_limit=10_000, clock=lambda: now[0],
                           idle_check_s=0.01)
    await roller.start()
    await feed(store, roller, [synthetic("ETH/USD", DAY0 + i * 1000, i) for i in range(60)])
    await roller.idle()
    assert archive.files("ETH/USD", 0, 2**53) == []
    now[0] = DAY0 / 1000 + 3601  # the hour ended and no snapshot came
    async with asyncio.timeout(10):
        while not archive.files("ETH/USD", 0, 2**53):  # noqa: ASYNC110 - polling the folder
            await asyncio.sleep(0.01)
    assert len(archived(archive, "ETH/USD")) == 60
    await roller.stop()


async def test_retention_runs_from_the_clock(tmp_path: Path, store: SQLiteHistoryStore) -> None:
    archive = Archive(tmp_path / "archive", writer_id="w1")
    archive.write([synthetic("ETH/USD", DAY0 + d * 86_400_000) for d in range(5)])
    roller = ArchiveRoller(archive, store, history_limit=10_000, keep_days=1,
                           clock=lambda: (DAY0 + 4 * 86_400_000) / 1000)
    await roller.start()
    await roller.idle()
    await roller.stop()
    assert [u.day.isoformat() for u in archive.usage()] == ["2023-11-17", "2023-11-18"]
    assert roller.stats.pruned == 3
