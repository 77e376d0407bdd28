"""``daemon/orderbook.py``: the orderbook role against the simulator: aligned ticks, gaps made
visible, sharding, pairs tracked and untracked while running; the services closed after its
feed failed. The history writer's tests are ``test_daemon_history_writer.py``'s."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from krakenstream.bus.memory import MemoryBus, MemorySubscription
from krakenstream.config import as_options, load_settings
from krakenstream.core.book import OrderBook
from krakenstream.core.snapshot import Snapshot
from krakenstream.daemon.orderbook import YIELD_EVERY, OrderbookRole, owns_pair
from krakenstream.daemon.services import Services
from krakenstream.errors import BackendUnavailable, Conflict, NotFound
from krakenstream.feed.options import FeedOptions
from krakenstream.feed.pool import FeedPool
from krakenstream.sim.server import SimServer
from krakenstream.store.sqlite import SQLiteHistoryStore
from roles_support import StaticFeed
from test_bus_support import wait_until

PAIRS = ["ETH/USD", "BTC/USD"]


def kraken(url: str, interval: float = 0.2, **extra: str):  # type: ignore[no-untyped-def]
    env = {"KMS_KRAKEN_URL": url, "KMS_KRAKEN_PAIRS": ",".join(PAIRS),
           "KMS_KRAKEN_SNAPSHOT_INTERVAL": str(interval), "KMS_KRAKEN_HEARTBEAT_TIMEOUT": "1",
           "KMS_KRAKEN_BACKOFF_INITIAL": "0.05", **extra}
    return load_settings(env=env).kraken


@contextlib.asynccontextmanager
async def running_role(url: str) -> AsyncIterator[tuple[OrderbookRole, MemorySubscription]]:
    """An orderbook role started on the feed at ``url``, publishing on an in-process bus to a
    group "t" member; stopped, and the bus closed, on the way out."""
    bus = MemoryBus()
    await bus.start()
    sub = bus.subscribe("t")
    await sub.start()
    role = OrderbookRole(kraken(url), bus)
    await role.start()
    try:
        yield role, sub
    finally:
        await role.stop()
        await bus.close()


async def drain(sub, n_min: int, within: float) -> list[Snapshot]:  # type: ignore[no-untyped-def]
    out: list[Snapshot] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and len(out) < n_min:
        out += await sub.get_batch(100, timeout=0.2)
    return out


def test_sharding_splits_the_pairs_evenly_and_stably() -> None:
    pairs = [f"P{i}/USD" for i in range(200)]
    halves = [{p for p in pairs if owns_pair(p, f"{i}/2")} for i in range(2)]
    assert halves[0] | halves[1] == set(pairs) and not halves[0] & halves[1]
    assert 60 < len(halves[0]) < 140  # roughly even
    assert all(owns_pair(p, "") for p in pairs)


@pytest.mark.slow
async def test_ticks_are_aligned_and_continuous() -> None:
    async with SimServer(pairs=PAIRS, seed=5, rate=20) as sim, running_role(sim.url) as (_, sub):
        snaps = await drain(sub, 2 * 8, within=6)
    for pair in PAIRS:
        mine = [s for s in snaps if s.pair == pair]
        assert len(mine) >= 8
        assert all(s.ts % 200 == 0 for s in mine), "ticks on wall-clock multiples"
        assert [s.seq for s in mine] == list(range(1, len(mine) + 1))
        assert [b.ts - a.ts for a, b in zip(mine, mine[1:], strict=False)] == [200] * (
            len(mine) - 1)
        assert mine[0].gap_before and not any(s.gap_before for s in mine[1:])
        # published when nothing changed too: ticks keep coming at the interval


@pytest.mark.slow
async def test_stale_pair_publishes_nothing_then_marks_the_gap() -> None:
    sim = SimServer(pairs=PAIRS, seed=6, rate=20)
    await sim.start()
    port = sim.port
    try:
        async with running_role(sim.url) as (role, sub):
            await asyncio.wait_for(role.feed.wait_live(), 10)
            before = await drain(sub, 4, within=3)
            skipped = role.stats.skipped
            await sim.stop()  # the exchange goes away: stale books, nothing is published
            assert await wait_until(lambda: role.stats.skipped >= skipped + 2 * 4,
                                    within=10), "ticks while stale publish nothing"
            sim = SimServer(pairs=PAIRS, seed=6, rate=20, port=port)
            await sim.start()
            await asyncio.wait_for(role.feed.wait_live(), 10)
            snaps = before + await drain(sub, 2 * 12, within=4)
    finally:
        await sim.stop()
    assert role.stats.skipped >= 2 * 4, "ticks while stale publish nothing"
    for pair in PAIRS:
        mine = sorted((s for s in snaps if s.pair == pair), key=lambda s: s.ts)
        after = [s for s in mine if s.gap_before]
        assert after, f"{pair}: the snapshot after the outage says a gap came before it"
        holes = [b.ts - a.ts for a, b in zip(mine, mine[1:], strict=False) if b.gap_before]
        assert holes and all(h >= 1000 for h in holes), holes


async def test_track_and_untrack_while_running() -> None:
    async with SimServer(pairs=[*PAIRS, "SOL/USD"], seed=7, rate=20) as sim, \
            running_role(sim.url) as (role, _):
        await role.track("sol-usd")
        await asyncio.wait_for(role.feed.wait_live(["SOL/USD"]), 10)
        assert role.book("SOL/USD") is not None
        for call, exc in ((role.track("SOL/USD"), Conflict),
                          (role.untrack("XRP/USD"), NotFound)):
            try:
                await call
            except exc:
                continue
            raise AssertionError(exc)
        assert await wait_until(lambda: series(role, "SOL/USD") is not None, within=5)
        await role.untrack("SOL/USD")
        assert "SOL/USD" not in role.pairs
        ticks = role.stats.ticks
        assert await wait_until(lambda: role.stats.ticks >= ticks + 2, within=5)
        assert 'pair="SOL/USD"' not in role.metrics.render().decode(), \
            "an untracked pair's series are gone, and the ticks make none anew"


async def test_services_close_everything_after_the_feed_failed(tmp_path: Path) -> None:
    def boom(_frame: str) -> None:
        raise RuntimeError("on_frame hook failed (test)")

    async with SimServer(pairs=PAIRS, seed=8, rate=20) as sim:
        settings = load_settings(env={"KMS_HOME": str(tmp_path), "KMS_KRAKEN_URL": sim.url})
        bus = MemoryBus()
        await bus.start()
        store = SQLiteHistoryStore(tmp_path / "h.sqlite3")
        await store.open()
        conf = kraken(sim.url)
        feed = FeedPool(as_options(conf, FeedOptions), conf.pairs, on_frame=boom)
        role = OrderbookRole(conf, bus, feed=feed)
        await role.start()
        await asyncio.wait_for(feed.wait_stopped(), 5)
        # a dead feed leaves no pair claiming to be live
        assert all(st.state.value == "stale" for st in role.status().values())
        services = Services(settings=settings, roles=("orderbook", "analysis"),
                            metrics=role.metrics, bus=bus, store=store, orderbook=role)
        await services.close()  # the feed's failure must not keep the rest open
    assert bus.closed
    with pytest.raises(BackendUnavailable):
        await store.count("A/B")


class _Enough(Exception):
    pass


class _RecordingRole(OrderbookRole):
    """Records the tick stamps instead of publishing; stops after ``n`` ticks."""

    def __init__(self, n: int, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kw)
        self.n, self.stamps = n, []  # type: list[int]

    async def publish_tick(self, ts_ms: int) -> int:
        self.stamps.append(ts_ms)
        if len(self.stamps) >= self.n:
            raise _Enough
        return 0


@pytest.mark.parametrize("interval_ms", [100, 200, 300])
@pytest.mark.slow
async def test_ticks_stay_on_the_interval_grid_for_hours(interval_ms: int) -> None:
    # 0.1 and 0.2 have no exact float: adding the interval to the last tick drifts by
    # milliseconds within hours; each tick must be computed from its index instead
    interval = interval_ms / 1000
    # called twice a tick, a quarter interval past each tick when the ticker sleeps (so it
    # never really sleeps) and three quarters past when it stamps (so never late)
    t = [round(1_764_094_000 / interval) * interval + interval / 4]

    def clock() -> float:
        t[0] += interval / 2
        return t[0]

    n = round(3 * 3600 / interval)  # three hours of ticks
    role = _RecordingRole(n, kraken=kraken("ws://127.0.0.1:1/v2", interval=interval),
                          bus=MemoryBus(), clock=clock)
    with pytest.raises(_Enough):
        await role._ticker()
    stamps = role.stamps
    assert len(stamps) == n
    off_grid = [s for s in stamps if s % interval_ms]
    assert not off_grid, f"{len(off_grid)} ticks off the wall-clock grid, first {off_grid[0]}"
    steps = {b - a for a, b in zip(stamps, stamps[1:], strict=False)}
    assert steps == {interval_ms}, sorted(steps)[:5]




async def test_every_pair_of_a_tick_reaches_the_analysis_group() -> None:
    """1,500 pairs publish each tick at once into a bus whose queue_size is 1,000 (the issue:
    a third of each tick was lost): the role announces its pairs, the group keeps them all."""
    pairs = [f"SYN{i:04d}/USD" for i in range(1, 1501)]
    bus = MemoryBus(queue_size=1_000)
    async with bus, bus.subscribe("analysis") as sub:
        role = OrderbookRole(kraken("ws://127.0.0.1:1/v2"), bus,
                             feed=StaticFeed(pairs))  # type: ignore[arg-type]
        for k in range(3):
            assert await role.publish_tick(1_764_000_000_000 + 1000 * k) == len(pairs)
        got = await drain(sub, 3 * len(pairs), within=5)
    assert len(got) == 3 * len(pairs)
    assert bus.stats().dropped == 0


def series(role: OrderbookRole, pair: str, kind: str = "published") -> float | None:
    """``kms_snapshots_<kind>{pair=...}`` as /metrics would show it (None: no series)."""
    return role.metrics.registry.get_sample_value(f"kms_snapshots_{kind}_total",
                                                  {"pair": pair})


async def test_a_tick_yields_and_a_pair_untracked_meanwhile_gets_nothing_more() -> None:
    """The tick hands the loop over after each YIELD_EVERY pairs: the history writer (here a
    group member) takes the first slice while the rest is built, and what it does meanwhile
    (untrack the tick's last pair) holds for the rest of the tick: no snapshot, no series."""
    assert YIELD_EVERY == 500
    pairs = [f"SYN{i:04d}/USD" for i in range(1, 1201)]  # yields after 500 and 1,000
    gone = pairs[-1]
    t1 = 1_764_000_000_000
    bus = MemoryBus()
    async with bus, bus.subscribe("analysis") as sub:
        role = OrderbookRole(kraken("ws://127.0.0.1:1/v2"), bus,
                             feed=StaticFeed(pairs))  # type: ignore[arg-type]
        assert await role.publish_tick(t1) == 1200
        assert len(await drain(sub, 1200, within=5)) == 1200
        assert series(role, gone) == 1
        first_slice: list[Snapshot] = []

        async def writer() -> None:  # waiting on the bus when the tick begins
            first_slice.extend(await sub.get_batch(5000, timeout=5))
            assert await role.untrack(gone) == [gone]

        writing = asyncio.create_task(writer())
        await asyncio.sleep(0)
        assert await role.publish_tick(t1 + 1000) == 1199
        await writing
        rest = await drain(sub, 1199 - 500, within=5)
    assert [s.pair for s in first_slice] == pairs[:500], "the first slice, mid-tick"
    tick = first_slice + rest
    assert [s.pair for s in tick] == pairs[:-1]
    assert {s.ts for s in tick} == {t1 + 1000}, "one tick, one stamp"
    assert series(role, gone) is None and series(role, pairs[0]) == 2
    assert f'pair="{gone}"' not in role.metrics.render().decode()
    assert (role.stats.ticks, role.stats.published, role.stats.skipped) == (2, 2399, 0)


async def test_the_series_a_tick_counts_in_follow_untrack_and_track_again() -> None:
    """The tick keeps each pair's series (labels() once): untracked, the series is gone and
    stays gone; tracked again, it starts anew, the old one never counted again."""
    feed = StaticFeed(["A/USD", "B/USD", "C/USD"])
    feed.books["C/USD"] = None  # not live: skipped, its own series
    role = OrderbookRole(kraken("ws://127.0.0.1:1/v2"), MemoryBus(),
                         feed=feed)  # type: ignore[arg-type]
    t1 = 1_764_000_000_000
    for k in range(2):
        assert await role.publish_tick(t1 + 1000 * k) == 2
    assert [series(role, p) for p in ("A/USD", "B/USD")] == [2, 2]
    assert series(role, "C/USD", "skipped") == 2
    assert await role.untrack("A/USD") == ["A/USD"]
    assert await role.untrack("C/USD") == ["C/USD"]
    await role.publish_tick(t1 + 2000)
    assert series(role, "A/USD") is None
    assert series(role, "C/USD", "skipped") is None
    assert series(role, "B/USD") == 3
    assert await role.track("A/USD") == ["A/USD"]
    snap_count = await role.publish_tick(t1 + 3000)
    assert snap_count == 2 and series(role, "A/USD") == 1, "a new series, from 0"
    assert series(role, "B/USD") == 4
    last = role.last_snapshot("A/USD")
    assert last is not None and last.seq == 3 and last.gap_before, "seq goes on, after a gap"
    assert (role.stats.published, role.stats.skipped) == (2 + 2 + 1 + 2, 2)


class HeldFeed(StaticFeed):
    """A static feed that says, at every book read, whether the feed was held and the
    cyclic collector running."""

    def __init__(self, pairs: list[str]) -> None:
        super().__init__(pairs)
        self.holding = False
        self.reads: list[tuple[bool, bool]] = []

    @contextlib.contextmanager
    def _hold(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False

    def held(self) -> contextlib.AbstractContextManager[None]:
        return self._hold()

    def book(self, pair: str) -> OrderBook | None:
        self.reads.append((self.holding, gc.isenabled()))
        return super().book(pair)


async def test_a_tick_reads_every_book_with_the_feed_held_and_its_reader_stores_inside() -> None:
    """The whole tick runs with the feed held (no frame applied: every snapshot is its book
    as of the tick) and no cyclic collection; the analysis group's reader, woken by the
    last snapshots, takes them before the hold ends; both are let go after."""
    pairs = [f"SYN{i:04d}/USD" for i in range(1, 2 * YIELD_EVERY + 201)]
    feed = HeldFeed(pairs)
    bus = MemoryBus()
    taken: list[tuple[int, bool]] = []

    async def reader(sub: MemorySubscription) -> None:
        while True:
            batch = await sub.get_batch(10_000, 5.0)
            taken.append((len(batch), feed.holding))

    assert gc.isenabled()
    async with bus, bus.subscribe("analysis") as sub:
        task = asyncio.create_task(reader(sub))
        try:
            role = OrderbookRole(kraken("ws://127.0.0.1:1/v2"), bus,
                                 feed=feed)  # type: ignore[arg-type]
            assert await role.publish_tick(1_764_000_000_000) == len(pairs)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert feed.reads == [(True, False)] * len(pairs)
    assert not feed.holding and gc.isenabled()
    assert sum(n for n, _ in taken) == len(pairs) and len(taken) >= 3, taken
    assert all(holding for _, holding in taken), taken
