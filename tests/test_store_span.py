"""History across the window store and the archive (store/span.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from archive_support import DAY0
from krakenstream.core.snapshot import Snapshot
from krakenstream.core.wide import wide_row
from krakenstream.store.archive import Archive, ArchiveRoller
from krakenstream.store.archive.text import wide_csv
from krakenstream.store.span import SpanningHistory
from krakenstream.store.sqlite import SQLiteHistoryStore
from test_store_support import synthetic

LIMIT = 1000
#: seqs never published (lost on the bus): the snapshot after each must be marked
HOLES = {500, 1500, 2600}


@pytest.fixture
async def span(tmp_path: Path) -> AsyncIterator[tuple[SpanningHistory, list[Snapshot]]]:
    store = SQLiteHistoryStore(tmp_path / "h.sqlite3", history_limit=LIMIT)
    await store.open()
    archive = Archive(tmp_path / "archive", writer_id="w1")
    roller = ArchiveRoller(archive, store, history_limit=LIMIT, roll_ms=600_000)
    await roller.start()
    snaps = [dataclasses.replace(synthetic("ETH/USD", DAY0 + i * 1000, i), origin="a")
             for i in range(3000) if i not in HOLES]
    for i in range(0, len(snaps), 100):
        await store.add(snaps[i:i + 100])
        roller.note(snaps[i:i + 100])
        await roller.keep_up()
    await roller.idle()
    await roller.stop(cut=False)
    try:
        yield SpanningHistory(store, archive), snaps
    finally:
        await store.close()


def marks(snaps: list[Snapshot]) -> set[int]:
    return {s.seq for s in snaps if s.gap_before}


@pytest.mark.slow
async def test_the_store_holds_the_newest_and_the_archive_the_rest(
        span: tuple[SpanningHistory, list[Snapshot]]) -> None:
    history, snaps = span
    oldest = await history.oldest_in_store("ETH/USD")
    assert oldest == snaps[-LIMIT].ts
    assert history.archive is not None
    assert history.archive.newest_ts("ETH/USD") is not None


@pytest.mark.slow
async def test_both_orders_are_continuous_and_marked_across_the_boundary(
        span: tuple[SpanningHistory, list[Snapshot]]) -> None:
    history, snaps = span
    want = [s.seq for s in snaps]
    asc = [s async for s in history.history("ETH/USD", order="asc")]
    desc = [s async for s in history.history("ETH/USD", order="desc")]
    assert [s.seq for s in asc] == want
    assert [s.seq for s in desc] == want[::-1]
    assert marks(asc) == marks(desc) == {h + 1 for h in HOLES}
    # the rows themselves are the stored ones, only the mark may differ
    assert [dataclasses.replace(s, gap_before=False) for s in asc] == snaps


@pytest.mark.slow
async def test_ranges_and_limits(span: tuple[SpanningHistory, list[Snapshot]]) -> None:
    history, snaps = span
    lo, hi = DAY0 + 1490 * 1000, DAY0 + 2100 * 1000  # straddles a hole and the boundary
    got = [s async for s in history.history("ETH/USD", since=lo, until=hi, order="asc")]
    assert [s.ts for s in got] == [s.ts for s in snaps if lo <= s.ts <= hi]
    assert marks(got) == {1501}
    first = [s async for s in history.history("ETH/USD", since=DAY0 + 501_000, order="asc",
                                              limit=3)]
    assert [s.seq for s in first] == [501, 502, 503] and marks(first) == {501}
    newest = [s async for s in history.history("ETH/USD", until=DAY0 + 2601_000, limit=2)]
    assert [s.seq for s in newest] == [2601, 2599] and marks(newest) == {2601}
    assert [s async for s in history.history("ETH/USD", limit=0)] == []
    assert [s async for s in history.history("BTC/USD")] == []


async def as_csv(history: SpanningHistory, **query: object) -> bytes:
    return b"".join([wide_csv(t, 10) async for t in history.tables("ETH/USD", **query)])


def wide_text(snaps: list[Snapshot]) -> bytes:
    return "".join(",".join(wide_row(s, 10)) + "\n" for s in snaps).encode()


@pytest.mark.parametrize("query", [
    {"order": "asc"}, {"order": "desc"},
    {"order": "asc", "since": DAY0 + 1490 * 1000, "until": DAY0 + 2100 * 1000},
    {"order": "desc", "since": DAY0 + 1490 * 1000, "until": DAY0 + 2100 * 1000},
    {"order": "asc", "since": DAY0 + 501_000, "limit": 3},
    {"order": "desc", "until": DAY0 + 2601_000, "limit": 2},
    {"order": "desc", "until": DAY0 + 2601_000, "limit": 1700},
    {"order": "asc", "limit": 2100}, {"order": "desc", "limit": 0},
])
@pytest.mark.slow
async def test_tables_hold_the_rows_and_marks_of_history(
        span: tuple[SpanningHistory, list[Snapshot]], query: dict[str, object]) -> None:
    """The column-at-a-time path (exports) gives the very text of the row-at-a-time one."""
    history, _ = span
    rows = [s async for s in history.history("ETH/USD", **query)]  # type: ignore[arg-type]
    assert await as_csv(history, **query) == wide_text(rows)
