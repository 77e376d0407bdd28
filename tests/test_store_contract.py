"""One contract for every history store: the SQLite file and Redis behave the same.

Each test runs against both backends; Redis tests skip locally (fail under CI=true) when no
Redis answers on 127.0.0.1:6379.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from krakenstream.core.snapshot import CSV_COLUMNS, Snapshot
from krakenstream.errors import InputError
from krakenstream.store import HistoryStore, RedisHistoryStore, SQLiteHistoryStore
from krakenstream.store.sqlite import SETTLE_ROWS
from test_store_support import T0, recorded, series, synthetic

MakeStore = Callable[..., Awaitable[HistoryStore]]


@pytest.fixture(params=["sqlite", "sqlite-settling",
                        pytest.param("redis", marks=pytest.mark.integration)])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeStore]:
    """Opens stores of one backend over the same data (same file / same key prefix).
    ``sqlite-settling`` moves its newest rows into settled history every three rows (when
    idle, or at once from twelve), so every answer is read from both of its tables."""
    opened: list[HistoryStore] = []
    if request.param == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        url = request.getfixturevalue("redis_server_url")

        def build(cap: int, chunk: int) -> HistoryStore:
            return RedisHistoryStore(url, prefix=prefix, history_limit=cap, chunk_size=chunk)
    else:
        path = tmp_path / "data" / "history.sqlite3"

        settle = 3 if request.param == "sqlite-settling" else SETTLE_ROWS

        def build(cap: int, chunk: int) -> HistoryStore:
            return SQLiteHistoryStore(path, history_limit=cap, chunk_size=chunk,
                                      settle_rows=settle)

    async def make(cap: int = 10_000, chunk: int = 500) -> HistoryStore:
        store = build(cap, chunk)
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


async def collect(store: HistoryStore, pair: str, **kw: object) -> list[Snapshot]:
    return [s async for s in store.history(pair, **kw)]  # type: ignore[arg-type]


def tss(snaps: list[Snapshot]) -> list[int]:
    return [s.ts for s in snaps]


async def test_empty_store_answers_empty(make_store: MakeStore) -> None:
    store = await make_store()
    await store.ping()
    assert await store.latest("BTC/USD") is None
    assert await store.count("BTC/USD") == 0
    assert await store.pairs() == []
    assert await collect(store, "BTC/USD") == []
    assert [j async for j in store.history_json("BTC/USD")] == []
    assert await store.add([]) == 0


async def test_add_latest_count_pairs(make_store: MakeStore) -> None:
    store = await make_store()
    btc, eth = series("BTC/USD", 5), series("ETH/USD", 3)
    assert await store.add(btc + eth) == 8
    assert await store.latest("BTC/USD") == btc[-1]
    assert await store.latest("ETH/USD") == eth[-1]
    assert await store.count("BTC/USD") == 5
    assert await store.count("ETH/USD") == 3
    assert await store.pairs() == ["BTC/USD", "ETH/USD"]
    # an unknown pair is simply empty
    assert await store.latest("XBT/EUR") is None
    assert await store.count("XBT/EUR") == 0
    assert await collect(store, "XBT/EUR", since=0) == []


async def test_open_is_idempotent_and_data_survives_reopen(make_store: MakeStore) -> None:
    first = await make_store()
    await first.open()  # a second open of the same instance is a no-op
    await first.add(series("BTC/USD", 4))
    await first.close()
    again = await make_store()  # the schema already exists: created idempotently
    assert await again.count("BTC/USD") == 4
    assert tss(await collect(again, "BTC/USD")) == [T0 + 3000, T0 + 2000, T0 + 1000, T0]


async def test_duplicates_are_stored_once(make_store: MakeStore) -> None:
    store = await make_store()
    snaps = series("BTC/USD", 10)
    assert await store.add(snaps) == 10
    assert await store.add(snaps) == 0
    # a duplicate inside one batch, and a half-new batch
    assert await store.add([snaps[0], snaps[0]]) == 0
    more = series("BTC/USD", 5, start=T0 + 8000)  # ts 8..12 s: 8 and 9 already stored
    assert await store.add(more + more) == 3
    assert await store.count("BTC/USD") == 13
    # the key is (pair, ts): a second snapshot for a stored second is ignored, the first kept
    other = synthetic("BTC/USD", T0, seq=999)
    assert other != snaps[0]
    assert await store.add([other]) == 0
    oldest = await collect(store, "BTC/USD", order="asc", limit=1)
    assert oldest == [snaps[0]]


async def test_out_of_order_adds_are_kept_and_ordered(make_store: MakeStore) -> None:
    store = await make_store()
    snaps = series("BTC/USD", 50)
    shuffled = snaps[:]
    random.Random(5).shuffle(shuffled)
    for i in range(0, 50, 7):
        await store.add(shuffled[i : i + 7])
    assert await store.count("BTC/USD") == 50
    assert await collect(store, "BTC/USD", order="asc") == snaps
    assert await store.latest("BTC/USD") == snaps[-1]


@pytest.mark.slow
async def test_cap_is_exact_with_a_small_cap(make_store: MakeStore) -> None:
    store = await make_store(cap=100)
    snaps = series("BTC/USD", 10_050)
    stored = 0
    for i in range(0, len(snaps), 1_000):
        stored += await store.add(snaps[i : i + 1_000])
    # add() counts what is new AND kept: each 1,000-row batch keeps its newest 100, the last
    # 50-row batch keeps all 50 (pushing out 50 of the batch before)
    assert await store.count("BTC/USD") == 100
    newest = snaps[-100:]
    assert await collect(store, "BTC/USD") == newest[::-1]
    assert await collect(store, "BTC/USD", order="asc", since=0) == newest
    assert await store.latest("BTC/USD") == snaps[-1]
    assert stored == 10 * 100 + 50
    # a snapshot older than the kept window is not stored (and not counted)
    assert await store.add([snaps[0]]) == 0
    assert await store.count("BTC/USD") == 100
    # one more pushes exactly one out
    extra = synthetic("BTC/USD", snaps[-1].ts + 1000, 10_050)
    assert await store.add([extra]) == 1
    assert tss(await collect(store, "BTC/USD", order="asc", limit=1)) == [snaps[-99].ts]


async def test_cap_one_by_one(make_store: MakeStore) -> None:
    store = await make_store(cap=10)
    snaps = series("ETH/USD", 25)
    assert [await store.add([s]) for s in snaps] == [1] * 25
    assert await collect(store, "ETH/USD", order="asc") == snaps[-10:]
    assert await store.count("ETH/USD") == 10


async def test_cap_is_per_pair(make_store: MakeStore) -> None:
    store = await make_store(cap=20)
    await store.add(series("BTC/USD", 30) + series("ETH/USD", 5))
    assert await store.count("BTC/USD") == 20
    assert await store.count("ETH/USD") == 5


@pytest.mark.slow
async def test_cap_default_10000(make_store: MakeStore) -> None:
    store = await make_store()
    snaps = series("BTC/USD", 10_050)
    for i in range(0, len(snaps), 2_000):
        await store.add(snaps[i : i + 2_000])
    assert await store.count("BTC/USD") == 10_000
    got = [j async for j in store.history_json("BTC/USD", order="asc")]
    assert len(got) == 10_000
    assert got[0] == snaps[50].to_json() and got[-1] == snaps[-1].to_json()
    full = await collect(store, "BTC/USD")
    assert len(full) == 10_000 and full[0] == snaps[-1] and full[-1] == snaps[50]


async def test_cap_is_exact_at_query_time_when_lowered(make_store: MakeStore) -> None:
    """Rows beyond the cap (a lowered limit, another writer) never reach an answer."""
    wide = await make_store(cap=100)
    snaps = series("BTC/USD", 60)
    await wide.add(snaps)
    narrow = await make_store(cap=10)
    assert await narrow.count("BTC/USD") == 10
    assert await collect(narrow, "BTC/USD", order="asc") == snaps[-10:]
    assert await collect(narrow, "BTC/USD", order="asc", since=T0, limit=1000) == snaps[-10:]
    assert await collect(narrow, "BTC/USD", until=snaps[-11].ts) == []
    assert await collect(narrow, "BTC/USD", until=snaps[-5].ts) == snaps[-10:-4][::-1]
    assert len([j async for j in narrow.history_json("BTC/USD", limit=50)]) == 10


async def test_ranges_are_inclusive_in_both_orders(make_store: MakeStore) -> None:
    store = await make_store(chunk=7)  # small chunks: paging crosses many boundaries
    snaps = series("BTC/USD", 100)
    await store.add(snaps)
    since, until = snaps[10].ts, snaps[60].ts
    asc = await collect(store, "BTC/USD", since=since, until=until, order="asc")
    assert asc == snaps[10:61]
    desc = await collect(store, "BTC/USD", since=since, until=until)
    assert desc == snaps[10:61][::-1]
    # limit keeps the newest first (desc) or the oldest first (asc) of the window
    assert await collect(store, "BTC/USD", since=since, until=until, limit=15) \
        == snaps[46:61][::-1]
    assert await collect(store, "BTC/USD", since=since, until=until, limit=15, order="asc") \
        == snaps[10:25]
    # open-ended on either side
    assert await collect(store, "BTC/USD", since=snaps[95].ts, order="asc") == snaps[95:]
    assert await collect(store, "BTC/USD", until=snaps[3].ts) == snaps[:4][::-1]
    # bounds between two snapshots
    assert await collect(store, "BTC/USD", since=snaps[5].ts + 1, until=snaps[7].ts - 1,
                         order="asc") == snaps[6:7]
    # a one-instant window
    assert await collect(store, "BTC/USD", since=snaps[5].ts, until=snaps[5].ts) == [snaps[5]]
    # limit larger than the data, and a limit at a chunk boundary
    assert len(await collect(store, "BTC/USD", limit=1_000)) == 100
    assert await collect(store, "BTC/USD", limit=14, order="asc") == snaps[:14]


async def test_empty_results(make_store: MakeStore) -> None:
    store = await make_store()
    snaps = series("BTC/USD", 10)
    await store.add(snaps)
    assert await collect(store, "BTC/USD", limit=0) == []
    assert await collect(store, "BTC/USD", since=snaps[5].ts, until=snaps[4].ts) == []
    assert await collect(store, "BTC/USD", since=snaps[-1].ts + 1) == []
    assert await collect(store, "BTC/USD", until=snaps[0].ts - 1, order="asc") == []


async def test_bad_queries_are_input_errors(make_store: MakeStore) -> None:
    store = await make_store()
    with pytest.raises(InputError, match="order"):
        await collect(store, "BTC/USD", order="newest")
    with pytest.raises(InputError, match="limit"):
        await collect(store, "BTC/USD", limit=-1)
    with pytest.raises(InputError, match="since"):
        await collect(store, "BTC/USD", since="yesterday")


async def test_history_json_is_the_stored_to_json(make_store: MakeStore) -> None:
    store = await make_store()
    snaps = series("BTC/USD", 30) + series("ETH/USD", 30)
    await store.add(snaps)
    got = [j async for j in store.history_json("ETH/USD", order="asc")]
    assert got == [s.to_json() for s in snaps[30:]]
    assert [Snapshot.from_json(j) for j in got] == snaps[30:]
    assert orjson.loads(got[0])["pair"] == "ETH/USD"


async def test_real_book_snapshots_round_trip_exactly(
    make_store: MakeStore, shared_recording: Path
) -> None:
    store = await make_store()
    snaps = recorded(shared_recording)
    assert len(snaps) > 100
    assert await store.add(snaps) == len(snaps)
    back = await collect(store, "BTC/USD", order="asc")
    assert back == snaps
    for a, b in zip(back, snaps, strict=True):
        # Decimal metrics survive exactly (same value, same exponent)
        assert (a.best_bid, a.best_ask, a.mid, a.spread_bps) == \
            (b.best_bid, b.best_ask, b.mid, b.spread_bps)
        assert str(a.mid) == str(b.mid)
        assert a.csv_row() == b.csv_row()


async def test_concurrent_adds_store_each_snapshot_once(make_store: MakeStore) -> None:
    store, other = await make_store(cap=500), await make_store(cap=500)
    snaps = series("BTC/USD", 400) + series("ETH/USD", 400)
    rng = random.Random(7)

    async def writer(target: HistoryStore, seed: int) -> int:
        mine = snaps[:]  # every writer writes everything: heavy overlap
        random.Random(seed).shuffle(mine)
        n = 0
        for i in range(0, len(mine), 37):
            n += await target.add(mine[i : i + 37])
        return n

    counts = await asyncio.gather(
        *(writer(store if i % 2 else other, rng.randrange(10**6)) for i in range(6))
    )
    assert sum(counts) == 800
    assert await store.count("BTC/USD") == 400 and await store.count("ETH/USD") == 400
    assert await collect(store, "BTC/USD", order="asc") == snaps[:400]
    assert await collect(other, "ETH/USD", order="asc") == snaps[400:]


async def test_concurrent_reads_while_writing(make_store: MakeStore) -> None:
    store = await make_store(cap=300)
    await store.add(series("BTC/USD", 300))

    async def reader() -> int:
        n = 0
        for _ in range(5):
            got = await collect(store, "BTC/USD", order="asc")
            assert len(got) == 300
            assert tss(got) == sorted(tss(got))
            n += 1
        return n

    async def writer() -> None:
        for i in range(300, 400):
            await store.add([synthetic("BTC/USD", T0 + i * 1000, i)])

    results = await asyncio.gather(reader(), reader(), writer())
    assert results[:2] == [5, 5]
    assert await store.count("BTC/USD") == 300
    assert (await store.latest("BTC/USD")) == synthetic("BTC/USD", T0 + 399_000, 399)


async def test_stopping_early_leaves_the_store_usable(make_store: MakeStore) -> None:
    store = await make_store(chunk=10)
    await store.add(series("BTC/USD", 100))
    seen = []
    gen = store.history("BTC/USD")
    async for snap in gen:
        seen.append(snap)
        if len(seen) == 15:
            break
    await gen.aclose()  # type: ignore[attr-defined]
    assert len(seen) == 15
    assert await store.count("BTC/USD") == 100
    assert await store.add(series("BTC/USD", 1, start=T0 + 10**6)) == 1


# -- gap_before, derived at read time from the stored neighbours ---------------------------


def with_holes(pair: str, n: int, missing: set[int], *, origin: str = "run1") -> list[Snapshot]:
    """``n`` one-second snapshots of one publisher run, those at indexes in ``missing`` lost
    (never stored); seq is the index, as the orderbook role counts it."""
    return [replace(s, origin=origin) for i, s in enumerate(series(pair, n)) if i not in missing]


async def marks(store: HistoryStore, pair: str, **kw: Any) -> dict[int, bool]:
    """seq -> gap_before, as ``history`` answers it (checked to agree with every other
    rendering of the same query: JSON, CSV)."""
    snaps = await collect(store, pair, **kw)
    js = [orjson.loads(j) async for j in store.history_json(pair, **kw)]
    rows = [line.rstrip("\n").split(",") async for line in store.history_csv(pair, **kw)]
    assert [d["gap_before"] for d in js] == [s.gap_before for s in snaps]
    gap_col = CSV_COLUMNS.index("gap_before")
    assert [r[gap_col] == "1" for r in rows] == [s.gap_before for s in snaps]
    assert [r[:3] for r in rows] == [[s.time, s.pair, str(s.seq)] for s in snaps]
    return {s.seq: s.gap_before for s in snaps}


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_every_hole_is_marked_in_every_rendering(make_store: MakeStore, order: str) -> None:
    store = await make_store(chunk=7)  # holes on and across chunk boundaries
    missing = {5, 6, 7, 14, 21, 30}
    await store.add(with_holes("BTC/USD", 40, missing))
    got = await marks(store, "BTC/USD", order=order)
    marked = {seq for seq, gap in got.items() if gap}
    assert marked == {8, 15, 22, 31}  # the snapshot after each hole, and nothing else
    # a window starting right after a hole: its first row's predecessor is outside it
    since = T0 + 8 * 1000
    assert (await marks(store, "BTC/USD", since=since, order=order))[8] is True
    assert (await marks(store, "BTC/USD", since=since + 1000, order=order))[9] is False
    # a window of one row, and a limit that ends right after a hole (newest first)
    assert await marks(store, "BTC/USD", since=T0 + 15_000, until=T0 + 15_000) == {15: True}
    assert list((await marks(store, "BTC/USD", until=T0 + 31_000, limit=3)).items()) == \
        [(31, True), (29, False), (28, False)]
    latest = await store.latest("BTC/USD")
    assert latest is not None and latest.seq == 39 and not latest.gap_before


async def test_a_late_redelivery_fills_the_hole_and_the_mark_goes(make_store: MakeStore) -> None:
    store = await make_store(chunk=4)
    snaps = with_holes("ETH/USD", 20, set())
    shuffled = snaps[:]
    random.Random(3).shuffle(shuffled)
    late = [s for s in shuffled if s.seq in (3, 11, 12)]
    early = [s for s in shuffled if s.seq not in (3, 11, 12)]
    for i in range(0, len(early), 5):  # out of order, in small batches
        await store.add(early[i : i + 5])
    for order in ("asc", "desc"):
        got = await marks(store, "ETH/USD", order=order)
        assert {seq for seq, gap in got.items() if gap} == {4, 13}
    assert await store.add(late) == 3  # the redelivery, after newer snapshots
    for order in ("asc", "desc"):
        assert not any((await marks(store, "ETH/USD", order=order)).values())
    assert await collect(store, "ETH/USD", order="asc") == snaps


async def test_another_origin_or_a_published_flag_is_a_gap(make_store: MakeStore) -> None:
    store = await make_store()
    first = with_holes("SOL/USD", 5, set(), origin="aaaa0001")
    # the next run's first snapshot (published with gap_before) was lost: its second follows
    # the first run's last with the very next seq, and only its origin tells them apart
    after = replace(series("SOL/USD", 6)[5], origin="bbbb0002", seq=5)
    flagged = replace(series("SOL/USD", 7)[6], origin="bbbb0002", seq=6, gap_before=True)
    await store.add([*first, after, flagged])
    got = await marks(store, "SOL/USD", order="asc")
    assert got == {0: False, 1: False, 2: False, 3: False, 4: False, 5: True, 6: True}
    latest = await store.latest("SOL/USD")
    assert latest is not None and latest.gap_before  # the published flag, kept
    # for a copy that derives marks itself (the archive): the flags as published
    raw = [s.gap_before async for s in store.history("SOL/USD", order="asc",
                                                     published_flags=True)]
    assert raw == [False] * 6 + [True]


async def test_the_first_kept_row_after_the_cap_keeps_its_published_flag(
    make_store: MakeStore,
) -> None:
    store = await make_store(cap=10, chunk=3)
    await store.add(with_holes("BTC/USD", 30, {19}))  # 29 stored, the oldest 19 trimmed
    for order in ("asc", "desc"):
        got = await marks(store, "BTC/USD", order=order)
        # seq 20 follows a hole, but its predecessor (18) was trimmed by the cap: 20 is the
        # pair's first row now and keeps its own published flag (False)
        assert sorted(got) == list(range(20, 30)) and not any(got.values())
    # the cap applies at query time too: the same rows read with a cap of 10 and of 11
    wide = await make_store(cap=100)
    await wide.add(with_holes("ETH/USD", 30, {19}))
    ten, eleven = await make_store(cap=10, chunk=3), await make_store(cap=11, chunk=3)
    for order in ("asc", "desc"):
        assert not any((await marks(ten, "ETH/USD", order=order)).values())
        got = await marks(eleven, "ETH/USD", order=order)
        assert {seq for seq, gap in got.items() if gap} == {20}
    assert await marks(ten, "ETH/USD", limit=1, order="asc") == {20: False}


async def test_rows_written_before_origins_read_as_one_run(make_store: MakeStore) -> None:
    """Snapshots without an origin (stored by an older version) are continuous by seq."""
    store = await make_store()
    old = series("XRP/USD", 5)
    assert all(s.origin == "" for s in old)
    await store.add([*old[:2], *old[3:]])
    assert await marks(store, "XRP/USD") == {4: False, 3: True, 1: False, 0: False}
