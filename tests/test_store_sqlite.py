"""What only the SQLite history store has: its file, WAL, schema version, threads."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from krakenstream.config import load_settings
from krakenstream.core import codec
from krakenstream.daemon.wiring import open_store, sqlite_path
from krakenstream.errors import BackendUnavailable
from krakenstream.store import SQLiteHistoryStore
from krakenstream.store.base import CHUNK_SIZE
from krakenstream.store.sqlite import HERE_ROWS, SETTLE_FORCE, SETTLE_ROWS, stored_size
from test_store_support import T0, series

DATA = Path(__file__).parent / "data"


async def test_default_file_is_in_the_data_dir_with_wal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings(env={"KMS_HOME": str(home)})
    assert sqlite_path(settings) == home / "history.sqlite3"
    store = open_store(settings)
    assert isinstance(store, SQLiteHistoryStore)
    await store.open()  # creates the missing folder
    try:
        await store.add(series("BTC/USD", 2))
    finally:
        await store.close()
    with sqlite3.connect(home / "history.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT pair, n FROM pair_counts").fetchall() == [("BTC/USD", 2)]
        # the stored value is the snapshot's compact form, exactly
        blob = conn.execute("SELECT data FROM snapshots ORDER BY ts LIMIT 1").fetchone()[0]
        first = series("BTC/USD", 1)[0]
        assert blob == codec.encode(first)
        assert codec.decode(blob).snapshot("BTC/USD", first.gap_before) == first
    conn.close()


def test_store_path_setting_wins(tmp_path: Path) -> None:
    settings = load_settings(env={"KMS_HOME": str(tmp_path),
                                  "KMS_STORE_PATH": str(tmp_path / "elsewhere.db")})
    assert sqlite_path(settings) == tmp_path / "elsewhere.db"


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(BackendUnavailable, match="schema 99"):
        await SQLiteHistoryStore(path).open()


async def test_an_unusable_path_is_backend_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = SQLiteHistoryStore(blocker / "history.sqlite3")
    with pytest.raises(BackendUnavailable, match="a-file"):
        await store.open()
    with pytest.raises(BackendUnavailable, match="not open"):
        await store.add(series("BTC/USD", 1))


async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = SQLiteHistoryStore(tmp_path / "h.sqlite3")
    await store.open()
    await store.close()
    await store.close()  # twice is fine
    with pytest.raises(BackendUnavailable):
        await store.ping()


@pytest.mark.slow
async def test_the_event_loop_keeps_running_during_big_writes_and_reads(tmp_path: Path) -> None:
    """10,000 snapshots written and read back: the loop never waits behind SQLite or JSON.
    Proven by order, not by the clock: a ticker that only yields turns many times while the
    write is under way, and the read hands out at most one chunk between two of its turns
    (never the whole 10,000). How long the loop's longest pause is meanwhile is
    ``bench/responsiveness.py``'s figure."""
    store = SQLiteHistoryStore(tmp_path / "h.sqlite3")
    await store.open()
    snaps = series("BTC/USD", 10_000)
    turns = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    tick = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0)  # the ticker is running
        before = turns
        await store.add(snaps)
        during_write = turns - before
        n = longest = run = 0
        last = turns
        async for _ in store.history("BTC/USD"):
            n += 1
            run = run + 1 if turns == last else 1
            last = turns
            longest = max(longest, run)
    finally:
        done.set()
        await tick
        await store.close()
    assert n == 10_000
    assert during_write >= 10, during_write
    # each step is bounded by one chunk's work, never the whole 10,000
    assert longest <= CHUNK_SIZE, longest


async def test_two_stores_on_one_file_share_the_history(tmp_path: Path) -> None:
    """Two writers (two processes in real life) on one file: WAL + busy timeout serialise them."""
    path = tmp_path / "h.sqlite3"
    a, b = SQLiteHistoryStore(path, history_limit=50), SQLiteHistoryStore(path, history_limit=50)
    await a.open()
    await b.open()
    try:
        snaps = series("BTC/USD", 80)
        got = await asyncio.gather(*(
            (a if i % 2 else b).add(snaps[i : i + 10]) for i in range(0, 80, 10)
        ))
        assert 50 <= sum(got) <= 80  # what is kept depends on which writer went first
        assert await a.count("BTC/USD") == 50 and await b.count("BTC/USD") == 50
        assert [s.ts async for s in b.history("BTC/USD", order="asc")] == \
            [T0 + i * 1000 for i in range(30, 80)]
    finally:
        await a.close()
        await b.close()


async def test_a_file_written_before_the_compact_form_is_read_and_extended(
    tmp_path: Path,
) -> None:
    """tests/data/history-v1.sqlite3 was written by SQLiteHistoryStore as it was before
    issue 12 (schema 1, a ``json`` column holding ``Snapshot.to_json()``): BTC/USD seq 1-12
    without seq 6 (seq 1 published with gap_before), ETH/USD seq 1-5."""
    path = tmp_path / "history.sqlite3"
    shutil.copyfile(DATA / "history-v1.sqlite3", path)
    store = SQLiteHistoryStore(path)
    await store.open()
    try:
        btc = [s async for s in store.history("BTC/USD", order="asc")]
        assert [s.seq for s in btc] == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]
        assert [s.seq for s in btc if s.gap_before] == [1, 7]  # the flag, and the hole
        assert btc[0].exchange_ts == "2023-07-30T15:30:49.008834Z" and btc[0].origin == ""
        old_json = [j async for j in store.history_json("ETH/USD", order="asc")]
        assert [orjson.loads(j)["seq"] for j in old_json] == [1, 2, 3, 4, 5]
        # new snapshots go in compact, beside the old rows, and one answer reads both
        newer = [replace(s, ts=btc[-1].ts + 1000 * (i + 1), seq=13 + i, gap_before=False)
                 for i, s in enumerate(btc[:3])]
        assert await store.add(newer) == 3
        both = [s async for s in store.history("BTC/USD", order="asc")]
        assert both == [*btc, *newer]
        assert [s.seq for s in both if s.gap_before] == [1, 7]
        assert await store.count("BTC/USD") == 14 and await store.pairs() == ["BTC/USD",
                                                                             "ETH/USD"]
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        kinds = {bytes(b)[:1] for (b,) in conn.execute("SELECT data FROM snapshots")}
        assert kinds == {b"{", codec.MAGIC}
    conn.close()


async def test_a_depth_10_snapshot_costs_at_most_400_bytes(tmp_path: Path) -> None:
    """Issue 12's bound, measured the way operations.md does: the history's pages
    (``dbstat``: both tables and the index of ``recent``) over its rows, a full
    10,000-snapshot history of realistic depth-10 books, as written (in ``recent``) and once
    moved into ``settled``."""
    path = tmp_path / "history.sqlite3"
    store = SQLiteHistoryStore(path)

    def per_row() -> float:
        size, rows = stored_size(path)
        assert rows == 10_000
        return size / rows

    await store.open()
    try:
        snaps = [replace(s, origin="ab12cd34") for s in series("BTC/USD", 10_000)]
        for i in range(0, len(snaps), 1_000):
            await store.add(snaps[i : i + 1_000])
        recent = per_row()
        assert await store.settle() == 10_000
        settled = per_row()
    finally:
        await store.close()
    assert recent <= 400, f"{recent:.0f} bytes a snapshot in recent"
    assert settled <= 400, f"{settled:.0f} bytes a snapshot settled"


async def test_a_full_disk_says_so(tmp_path: Path) -> None:
    """SQLite rolls a transaction back by itself on SQLITE_FULL; our ROLLBACK after it must not
    replace "database or disk is full" with "cannot rollback - no transaction is active"."""
    store = SQLiteHistoryStore(tmp_path / "h.sqlite3")
    await store.open()
    try:
        await store.add(series("BTC/USD", 2))

        def cap_the_file() -> None:
            assert store._wconn is not None
            pages = store._wconn.execute("PRAGMA page_count").fetchone()[0]
            store._wconn.execute(f"PRAGMA max_page_count = {pages + 1}")

        await store._write(cap_the_file)
        with pytest.raises(BackendUnavailable, match="database or disk is full"):
            await store.add(series("BTC/USD", 500, start=T0 + 10_000_000))
        # nothing half-written, and the store still answers
        assert await store.count("BTC/USD") == 2
    finally:
        await store.close()


@pytest.mark.parametrize("settle_rows", [SETTLE_ROWS, 50])
async def test_a_batch_of_several_statements_is_stored_as_row_by_row(
        tmp_path: Path, settle_rows: int) -> None:
    """A batch reaches SQL 2,000 rows a statement and is then deduplicated, inserted, counted
    and trimmed in bulk: 3,500 rows over two pairs, with rows stored before and rows twice in
    the batch, end as one row at a time (INSERT OR IGNORE, then the cap) would leave them
    (rows stored before in recent, or already moved into settled history)."""
    store = SQLiteHistoryStore(tmp_path / "h.sqlite3", history_limit=1_500,
                               settle_rows=settle_rows)
    await store.open()
    try:
        btc, eth = series("BTC/USD", 2_000), series("ETH/USD", 1_200)
        assert await store.add(btc[:100]) == 100
        # BTC: 1,900 new, 2,000 in all: the oldest 500 trimmed, 400 of them new in this batch
        # ETH: 1,200 new, its first 300 sent twice (the first copy counts)
        assert await store.add(btc + eth + eth[:300]) == 1_500 + 1_200
        assert await store.count("BTC/USD") == 1_500 and await store.count("ETH/USD") == 1_200
        assert [s async for s in store.history("BTC/USD", order="asc",
                                               published_flags=True)] == btc[500:]
        assert [s async for s in store.history("ETH/USD", order="asc",
                                               published_flags=True)] == eth
        # one more a pair at the cap: each trims its oldest, in the same few statements
        later = series("BTC/USD", 2_001)[-1:] + series("ETH/USD", 1_501)[1_200:]
        assert await store.add(later) == 1 + 301
        assert await store.count("BTC/USD") == 1_500 and await store.count("ETH/USD") == 1_500
        assert [s.ts async for s in store.history("ETH/USD", order="asc")] == \
            [T0 + i * 1000 for i in range(1, 1_501)]
        assert await store.add(later) == 0  # a redelivery
    finally:
        await store.close()


def _rows_on_disk(path: Path, pair: str) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM snapshots WHERE pair = ?",
                                (pair,)).fetchone()[0])
    finally:
        conn.close()


def test_the_slack_is_one_to_two_percent_of_big_caps_and_none_of_small_ones() -> None:
    from krakenstream.store.sqlite import slack

    assert slack(99, "BTC/USD") == 0 and slack(10, "") == 0
    figures = {slack(10_000, f"P{i}/USD") for i in range(2_000)}
    assert min(figures) == 100 and max(figures) == 199 and len(figures) > 90  # spread
    assert slack(10_000, "") == 100
    assert slack(10_000, "BTC/USD") == slack(10_000, "BTC/USD")  # stable


@pytest.mark.parametrize("settle_rows", [SETTLE_ROWS, 7])
async def test_rows_beyond_the_cap_go_in_bulk_and_never_reach_an_answer(
        tmp_path: Path, settle_rows: int) -> None:
    """Each pair keeps up to its slack beyond the cap on disk, then loses the excess in one
    delete; count, history and add's figure are those of an exact cap all along (the rows
    in recent, or moved into settled history every few rows)."""
    from krakenstream.store.sqlite import slack

    cap, pair = 1_000, "ETH/USD"
    most = cap + slack(cap, pair)
    path = tmp_path / "h.sqlite3"
    store = SQLiteHistoryStore(path, history_limit=cap, settle_rows=settle_rows)
    await store.open()
    try:
        snaps = series(pair, 1_300)
        assert await store.add(snaps[:cap]) == cap
        on_disk = []
        for i in range(cap, len(snaps), 5):
            assert await store.add(snaps[i:i + 5]) == 5  # newest rows: all kept
            on_disk.append(_rows_on_disk(path, pair))
            assert await store.count(pair) == cap
            newest = [s async for s in store.history(pair, limit=cap + 50,
                                                    published_flags=True)]
            assert newest == snaps[i + 5 - cap:i + 5][::-1]
        assert max(on_disk) <= most and cap in on_disk
        # the rows grew past the cap and were cut back to it in one go, more than once
        cuts = [b for a, b in zip(on_disk, on_disk[1:], strict=False) if b < a]
        assert cuts and all(b == cap for b in cuts) and len(cuts) >= 2
        # a row older than the newest cap is no news: not counted as kept
        assert await store.add([snaps[0]]) == 0
    finally:
        await store.close()


async def test_the_checkpointer_copies_the_wal_into_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's commits only append to the WAL (no auto-checkpoint); the checkpointer
    thread copies the WAL into the database file while the store is open."""
    import krakenstream.store.sqlite as module

    monkeypatch.setattr(module, "CHECKPOINT_EVERY_S", 0.02)
    path = tmp_path / "h.sqlite3"
    store = SQLiteHistoryStore(path)
    await store.open()
    try:
        def autocheckpoint() -> int:
            assert store._wconn is not None
            return int(store._wconn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

        assert await store._write(autocheckpoint) == 0
        before = path.stat().st_size
        await store.add(series("BTC/USD", 3_000))
        deadline = asyncio.get_running_loop().time() + 10
        while path.stat().st_size <= before:  # only a checkpoint writes the file itself
            assert asyncio.get_running_loop().time() < deadline, "no checkpoint in 10 s"
            await asyncio.sleep(0.02)
        assert await store.count("BTC/USD") == 3_000
    finally:
        await store.close()


def test_a_failing_checkpoint_is_logged_once_and_tried_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    import threading

    import krakenstream.store.sqlite as module

    monkeypatch.setattr(module, "CHECKPOINT_EVERY_S", 0.01)
    path = tmp_path / "h.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    attempts: list[int] = []
    done = threading.Event()

    def connect() -> sqlite3.Connection:
        attempts.append(1)
        if len(attempts) <= 3:  # the file cannot be opened, three times over
            raise sqlite3.OperationalError("unable to open database file")
        done.set()
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    caplog.set_level("INFO", logger=module.__name__)
    checkpointer = module._Checkpointer(path, connect)
    try:
        checkpointer.written.set()
        assert done.wait(10)
        deadline = time.monotonic() + 10
        while checkpointer.written.is_set():  # the successful one clears it
            assert time.monotonic() < deadline, "the checkpoint never succeeded"
            time.sleep(0.01)
    finally:
        checkpointer.stop()
    failed = [r for r in caplog.records if "checkpoint failed" in r.getMessage()]
    again = [r for r in caplog.records if "checkpoints succeed again" in r.getMessage()]
    assert len(failed) == 1 and "unable to open" in failed[0].getMessage()
    assert len(again) == 1 and len(attempts) == 4


def _table_rows(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                for t in ("recent", "settled")}
    finally:
        conn.close()


async def test_recent_rows_settle_into_history_and_every_answer_stays_the_same(
        tmp_path: Path) -> None:
    """Rows are written to ``recent`` and moved into ``settled`` in one transaction; count,
    pairs, history either way and a redelivery's figure are the same before and after, and
    a row already settled is no news either."""
    path = tmp_path / "h.sqlite3"
    store = SQLiteHistoryStore(path, history_limit=40)
    await store.open()
    try:
        btc, eth = series("BTC/USD", 50), series("ETH/USD", 30)
        assert await store.add(btc[:30] + eth[:10]) == 40
        assert await store.settle() == 40
        assert await store.add(btc[30:] + eth[10:]) == 20 + 20
        assert _table_rows(path) == {"recent": 40, "settled": 30}  # BTC's oldest 10 trimmed

        async def answers() -> tuple[object, ...]:
            return (await store.count("BTC/USD"), await store.count("ETH/USD"),
                    await store.pairs(),
                    [s async for s in store.history("BTC/USD", order="asc",
                                                    published_flags=True)],
                    [s async for s in store.history("ETH/USD", limit=7)],
                    [s async for s in store.history("BTC/USD", since=btc[25].ts,
                                                    until=btc[35].ts)])

        before = await answers()
        assert before[0] == 40 and before[1] == 30 and before[3] == btc[10:]
        assert await store.settle() == 40
        assert _table_rows(path) == {"recent": 0, "settled": 70}
        assert await answers() == before
        assert await store.add(btc[40:] + eth) == 0  # settled already: a redelivery
        assert await store.settle() == 0
    finally:
        await store.close()


async def test_the_writer_settles_when_idle_or_when_never_idle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From ``settle_rows`` rows in recent, a move starts once no write has come for
    ``SETTLE_IDLE_S``; a writer given batches back to back moves at ``SETTLE_FORCE`` times
    that, right after the write that got there."""
    import krakenstream.store.sqlite as module

    monkeypatch.setattr(module, "SETTLE_IDLE_S", 0.01)
    path = tmp_path / "h.sqlite3"
    store = SQLiteHistoryStore(path, settle_rows=20)
    await store.open()
    try:
        snaps = series("BTC/USD", 200)
        await store.add(snaps[:19])
        assert store._settle_timer is None  # below settle_rows: nothing to do
        await store.add(snaps[19:25])
        deadline = asyncio.get_running_loop().time() + 10
        while _table_rows(path)["recent"]:
            assert asyncio.get_running_loop().time() < deadline, "no move in 10 s"
            await asyncio.sleep(0.01)
        assert _table_rows(path) == {"recent": 0, "settled": 25}

        monkeypatch.setattr(module, "SETTLE_IDLE_S", 3600)  # never idle long enough
        added = 25
        for i in range(25, 200, 10):
            await store.add(snaps[i:i + 10])
            added += len(snaps[i:i + 10])
            rows = _table_rows(path)
            assert rows["recent"] + rows["settled"] == added
            assert rows["recent"] < SETTLE_FORCE * 20  # forced moves keep it bounded
        assert _table_rows(path)["settled"] > 25
        assert [s async for s in store.history("BTC/USD", order="asc",
                                               published_flags=True)] == snaps
    finally:
        await store.close()


async def test_a_schema_2_file_becomes_settled_history(tmp_path: Path) -> None:
    """Schema 2's one table is renamed settled history (no row rewritten), its counts kept,
    and the file takes new rows beside the old."""
    path = tmp_path / "h.sqlite3"
    old = series("BTC/USD", 5)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE snapshots (pair TEXT NOT NULL, ts INTEGER NOT NULL, "
                     "data BLOB NOT NULL, PRIMARY KEY (pair, ts)) WITHOUT ROWID")
        conn.execute("CREATE TABLE pair_counts (pair TEXT PRIMARY KEY, n INTEGER NOT NULL) "
                     "WITHOUT ROWID")
        conn.executemany("INSERT INTO snapshots VALUES (?, ?, ?)",
                         [(s.pair, s.ts, codec.encode(s)) for s in old])
        conn.execute("INSERT INTO pair_counts VALUES ('BTC/USD', 5)")
        conn.execute("PRAGMA user_version = 2")
    conn.close()
    store = SQLiteHistoryStore(path)
    await store.open()
    try:
        assert await store.count("BTC/USD") == 5
        newer = series("BTC/USD", 8)[5:]
        assert await store.add(old + newer) == 3
        assert [s async for s in store.history("BTC/USD", order="asc",
                                               published_flags=True)] == old + newer
    finally:
        await store.close()
    assert _table_rows(path) == {"recent": 3, "settled": 5}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    conn.close()


async def test_a_tick_known_to_be_news_goes_in_on_the_loop_unless_the_thread_is_busy(
        tmp_path: Path) -> None:
    """A small batch the writer knows is news is appended on the event loop (no job for the
    writer thread, no GIL waits); with the thread busy (a move, a checked batch) it waits
    its turn there, in order; a batch beyond HERE_ROWS always goes to the thread."""
    store = SQLiteHistoryStore(tmp_path / "h.sqlite3")
    await store.open()
    pairs = [f"P{i:04d}/USD" for i in range(HERE_ROWS + 1)]
    ticks = list(zip(*(series(p, 5) for p in pairs), strict=True))
    release, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(30)

    try:
        given = store._given
        await store.add(ticks[0][:3])  # the pairs are new: checked, on the thread
        assert store._given == given + 1
        assert await store.add(ticks[1][:3]) == 3
        assert store._given == given + 1 and store._writes.appended == 1  # on the loop
        busy = asyncio.create_task(store._write(hold))
        await asyncio.to_thread(started.wait, 30)
        adding = asyncio.create_task(store.add(ticks[2][:3]))
        while store._given < given + 3:  # noqa: ASYNC110 - the add queued behind the thread
            await asyncio.sleep(0)
        assert not adding.done()
        release.set()
        await busy
        assert await adding == 3
        await store.add(ticks[3][3:])  # those pairs are new: checked, on the thread
        given = store._given
        assert await store.add(ticks[4]) == len(pairs)  # news, but too big for the loop
        assert store._given == given + 1
        assert [s.ts async for s in store.history(pairs[0], order="asc")] == \
            [s.ts for s in series(pairs[0], 3)] + [ticks[4][0].ts]
    finally:
        release.set()
        await store.close()
