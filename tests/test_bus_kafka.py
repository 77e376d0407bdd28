"""The Kafka bus with no broker at all (a closed loopback port): it must never raise, never
block the publisher, keep its buffer bounded and close in bounded time. The behaviour with a
real broker is in the contract suite (test_bus_contract.py)."""

from __future__ import annotations

import asyncio
import random
from itertools import islice

import pytest

from conftest import free_port
from krakenstream.bus.kafka import KafkaBus, KafkaOptions
from krakenstream.core import codec
from krakenstream.core.backoff import backoff
from test_bus_support import snap, wait_until


def nowhere(buffer_size: int = 10_000) -> KafkaOptions:
    """Options pointing at a loopback port nobody listens on."""
    return KafkaOptions(bootstrap=f"127.0.0.1:{free_port()}", buffer_size=buffer_size)


async def test_buffer_keeps_the_newest_and_close_counts_the_rest_as_dropped() -> None:
    bus = KafkaBus(nowhere(buffer_size=4))  # not started: nothing is sent anywhere
    for seq in range(10):
        await bus.publish(snap("BTC/USD", seq))
    stats = bus.stats()
    assert (stats.published, stats.dropped, stats.buffered) == (0, 6, 4)
    await bus.close()
    stats = bus.stats()
    assert (stats.published, stats.dropped, stats.buffered) == (0, 10, 0)


@pytest.mark.slow
async def test_an_unreachable_broker_is_retried_and_close_is_bounded() -> None:
    loop = asyncio.get_running_loop()
    bus = KafkaBus(nowhere(), close_timeout=0.3, request_timeout=1.0, backoff_max=0.2)
    await bus.start()
    started = loop.time()
    for seq in range(100):
        await bus.publish(snap("ETH/USD", seq))
    assert loop.time() - started < 0.5
    assert await wait_until(lambda: bus.stats().errors >= 3, 5)  # retrying, not crashing
    assert not await bus.healthy()
    assert bus.stats().buffered == 100

    started = loop.time()
    await bus.close()
    assert loop.time() - started < 0.3 + 1.0 + 1.0
    assert bus.stats().dropped == 100
    await bus.publish(snap("ETH/USD", 100))  # after close: counted, not raised
    assert bus.stats().dropped == 101


@pytest.mark.slow
async def test_flush_without_a_broker_leaves_what_it_holds_to_close_in_one_budget() -> None:
    bus = KafkaBus(nowhere(), close_timeout=0.3, request_timeout=1.0, backoff_max=0.2)
    await bus.flush()  # not started: nothing to wait for
    await bus.start()
    await bus.flush()  # nothing published: nothing to wait for, no budget spent
    assert bus._deadline is None
    for seq in range(10):
        await bus.publish(snap("ETH/USD", seq))
    await bus.flush()  # the broker is down: it gives up once close_timeout is spent
    assert bus.stats().buffered == 10  # still held, for close()
    assert bus._budget_left() == 0.0  # and close() does not wait a second close_timeout
    await bus.close()
    assert bus.stats().dropped == 10 and bus.stats().buffered == 0


async def test_a_subscription_without_broker_returns_empty_within_its_timeout() -> None:
    loop = asyncio.get_running_loop()
    bus = KafkaBus(nowhere())
    async with bus.subscribe("analysis") as sub:
        assert sub.group == "analysis"
        for _ in range(3):
            started = loop.time()
            assert await sub.get_batch(timeout=0.2) == []
            assert loop.time() - started < 1.0
        await sub.commit()  # nothing read, nothing to commit: a no-op, not an error
    assert bus.stats().errors >= 1
    await bus.close()


def test_backoff_is_the_core_one_jittered_capped_and_seeded() -> None:
    bus = KafkaBus(nowhere(), backoff_initial=0.2, backoff_max=5.0, rng=random.Random(4))
    delays = list(islice(bus._new_delays(), 50))
    assert delays == list(islice(backoff(0.2, 5.0, rng=random.Random(4)), 50))
    assert all(0.0 <= d <= 5.0 for d in delays)
    assert all(d <= 0.2 for d in delays[:1])
    assert max(delays[10:]) > 0.2  # grows past the initial delay
    sub = bus.subscribe("g")  # its subscriptions draw from the same seeded source
    assert all(0.0 <= d <= 5.0 for d in islice(sub._new_delays(), 50))


async def test_the_buffer_holds_whole_ticks_of_the_announced_pairs(caplog) -> None:  # type: ignore[no-untyped-def]
    bus = KafkaBus(nowhere(buffer_size=100), buffer_ticks=4)  # not started: nothing is sent
    bus.size_for_pairs(1_500)
    bus.size_for_pairs(10)  # only grows
    assert bus.buffer_limit == 6_000
    with caplog.at_level("WARNING", logger="krakenstream.bus.kafka"):
        for seq in range(4):  # four ticks of 1,500 pairs while the broker is away: all kept
            for i in range(1_500):
                await bus.publish(snap(f"SYN{i:04d}/USD", seq))
        assert (bus.stats().buffered, bus.stats().dropped) == (6_000, 0)
        for i in range(3):
            await bus.publish(snap(f"SYN{i:04d}/USD", 4))
        assert (bus.stats().buffered, bus.stats().dropped) == (6_000, 3)
    full = [r for r in caplog.records if "buffer full" in r.getMessage()]
    assert len(full) == 1  # logged once, not per snapshot
    await bus.close()


async def test_publish_encodes_the_record_at_once() -> None:
    """A snapshot is encoded as it is published (in the publisher's turn on the event loop,
    while the sender may be waiting for an acknowledgement), so the sender only hands the
    ready records to the producer."""
    bus = KafkaBus(nowhere())  # not started: nothing is sent anywhere
    sent = [snap("BTC/USD", seq) for seq in range(3)]
    for s in sent:
        await bus.publish(s)
    held = list(bus._buffer)
    assert [(e.pair, e.ts, e.data) for e in held] == [
        (s.pair, s.ts, codec.encode(s)) for s in sent]
    assert [e.snapshot() for e in held] == sent
    await bus.close()
    assert bus.stats().dropped == 3
