"""The in-process bus beyond the shared contract: queues shared by a group, the drop-oldest
policy, waiting and waking, and the factory that picks a backend from the settings."""

from __future__ import annotations

import asyncio

import pytest

from krakenstream.bus import BusSubscription, MemoryBus, SnapshotBus
from krakenstream.bus.kafka import KafkaBus
from krakenstream.config import BusSettings, Settings
from krakenstream.daemon.wiring import make_bus
from test_bus_support import collect, snap


async def test_members_of_one_group_share_its_snapshots() -> None:
    async with MemoryBus() as bus:
        async with bus.subscribe("g") as a, bus.subscribe("g") as b:
            sent = [snap("BTC/USD", seq) for seq in range(10)]
            for s in sent:
                await bus.publish(s)
            got_a = await a.get_batch(max_items=4)
            got_b = await b.get_batch(max_items=100)
            assert got_a == sent[:4]
            assert got_b == sent[4:]
            assert bus.stats().delivered == 10


async def test_uncommitted_snapshots_go_to_the_next_member() -> None:
    async with MemoryBus() as bus:
        async with bus.subscribe("g") as stays:
            leaves = bus.subscribe("g")
            await leaves.start()
            for seq in range(4):
                await bus.publish(snap("ETH/USD", seq))
            taken = await leaves.get_batch(max_items=2)
            await leaves.commit()
            again = await leaves.get_batch(max_items=1)
            await leaves.close()  # seq 2 was taken but not committed: back to the front
            assert [s.seq for s in taken + again] == [0, 1, 2]
            assert [s.seq for s in await stays.get_batch()] == [2, 3]


async def test_put_back_beyond_the_bound_drops_the_oldest() -> None:
    async with MemoryBus(queue_size=3) as bus:
        first = bus.subscribe("g")
        await first.start()
        for seq in range(3):
            await bus.publish(snap("BTC/USD", seq))
        assert len(await first.get_batch()) == 3
        for seq in range(3, 5):
            await bus.publish(snap("BTC/USD", seq))
        await first.close()  # 0, 1, 2 go back in front of 3, 4: two of five do not fit
        async with bus.subscribe("g") as second:
            assert [s.seq for s in await second.get_batch()] == [2, 3, 4]
        assert bus.stats().dropped == 2


async def test_a_group_keeps_receiving_while_no_member_is_attached() -> None:
    async with MemoryBus(queue_size=10) as bus:
        async with bus.subscribe("g") as sub:
            assert await sub.get_batch(timeout=0) == []
        for seq in range(3):
            await bus.publish(snap("BTC/USD", seq))
        assert bus.stats().buffered == 3
        async with bus.subscribe("g") as later:
            assert [s.seq for s in await later.get_batch()] == [0, 1, 2]


async def test_a_closed_tap_receives_nothing_and_holds_nothing() -> None:
    async with MemoryBus() as bus:
        tap = bus.subscribe(None)
        await tap.start()
        await bus.publish(snap("BTC/USD", 0))
        await tap.close()
        await bus.publish(snap("BTC/USD", 1))
        assert bus.stats().buffered == 0
        assert tap.stats().delivered == 0


async def test_get_batch_waits_for_the_timeout_and_wakes_on_publish() -> None:
    loop = asyncio.get_running_loop()
    async with MemoryBus() as bus, bus.subscribe(None) as tap:
        started = loop.time()
        assert await tap.get_batch(timeout=0.15) == []
        assert 0.1 <= loop.time() - started < 1.0

        async def later() -> None:  # runs once get_batch below has yielded: it is waiting
            await bus.publish(snap("SOL/EUR", 7))

        task = asyncio.create_task(later())
        # a wait of an hour that returns at all (within 30 s) woke on the publish
        got = await asyncio.wait_for(tap.get_batch(timeout=3600.0), 30)
        await task
        assert [s.seq for s in got] == [7]


async def test_after_close_readers_drain_then_return_at_once() -> None:
    loop = asyncio.get_running_loop()
    bus = MemoryBus()
    async with bus.subscribe("g") as sub:
        await bus.publish(snap("BTC/USD", 0))
        await bus.close()
        assert [s.seq for s in await sub.get_batch()] == [0]
        started = loop.time()
        assert await sub.get_batch(timeout=5.0) == []
        assert loop.time() - started < 0.5


async def test_misuse_is_refused() -> None:
    with pytest.raises(ValueError):
        MemoryBus(queue_size=0)
    bus = MemoryBus()
    with pytest.raises(ValueError):
        bus.subscribe("")
    sub = bus.subscribe("g")
    with pytest.raises(RuntimeError):
        await sub.get_batch()
    await sub.start()
    with pytest.raises(ValueError):
        await sub.get_batch(max_items=0)
    await sub.close()


def test_make_bus_picks_the_configured_backend() -> None:
    memory = make_bus(Settings().replace(bus=BusSettings(backend="memory", queue_size=7)))
    assert isinstance(memory, MemoryBus) and memory.queue_size == 7
    kafka = make_bus(Settings().replace(bus=BusSettings(backend="kafka")))
    assert isinstance(kafka, KafkaBus)
    for bus in (memory, kafka):
        assert isinstance(bus, SnapshotBus)
        assert isinstance(bus.subscribe(None), BusSubscription)


@pytest.mark.slow
async def test_many_snapshots_through_many_subscribers() -> None:
    """A fast path sanity check: 3 groups and a tap each see 20,000 snapshots in order."""
    async with MemoryBus(queue_size=50_000) as bus:
        subs = [bus.subscribe(name) for name in ("a", "b", "c", None)]
        for sub in subs:
            await sub.start()
        sent = [snap("BTC/USD", seq) for seq in range(20_000)]
        for s in sent:
            await bus.publish(s)
        for sub in subs:
            got = await collect(sub, len(sent), within=5)
            assert [s.seq for s in got] == list(range(20_000))
            await sub.close()
        assert bus.stats().dropped == 0


async def test_a_group_holds_whole_ticks_of_every_announced_pair() -> None:
    """1,500 pairs publish on one tick into a bus whose queue_size is 1,000: the group gets
    every snapshot of several ticks, a tap at least the newest whole tick."""
    pairs = [f"SYN{i:04d}/USD" for i in range(1, 1501)]
    async with MemoryBus(queue_size=1_000, buffer_ticks=3) as bus:
        async with bus.subscribe("analysis") as group, bus.subscribe(None) as tap:
            bus.size_for_pairs(len(pairs))
            for seq in range(3):  # three ticks, nobody reads in between
                for pair in pairs:
                    await bus.publish(snap(pair, seq))
            got = await collect(group, 3 * len(pairs), within=5)
            assert len(got) == 3 * len(pairs)
            assert group.stats().dropped == 0
            seen = await collect(tap, 2 * len(pairs), within=5)
            assert [s.seq for s in seen[-len(pairs):]] == [2] * len(pairs)
            assert tap.stats().dropped == len(pairs)  # the tap keeps two ticks, drops the oldest


async def test_the_bound_only_grows_and_a_full_group_logs_once_then_its_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with MemoryBus(queue_size=2, buffer_ticks=2) as bus:
        bus.size_for_pairs(3)
        bus.size_for_pairs(1)  # fewer pairs later: what a slow store still holds stays
        async with bus.subscribe("g") as sub:
            with caplog.at_level("INFO", logger="krakenstream.bus.memory"):
                for seq in range(10):
                    await bus.publish(snap("BTC/USD", seq))
                assert bus.stats().dropped == 4  # 6 kept: 3 pairs x 2 ticks
                full = [r for r in caplog.records if "is full" in r.getMessage()]
                assert len(full) == 1 and full[0].levelname == "WARNING"
                got = await sub.get_batch(max_items=100)
                assert [s.seq for s in got] == [4, 5, 6, 7, 8, 9]
            caught_up = [r for r in caplog.records if "caught up" in r.getMessage()]
            assert len(caught_up) == 1 and "4 snapshots were dropped" in caught_up[0].getMessage()
