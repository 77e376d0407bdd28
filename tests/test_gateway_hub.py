"""The bus tap's side (gateway/hub.py): the latest cache and the WebSocket backlog policy."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson
import pytest

from conftest import Broker
from gateway_support import sample_snapshot
from krakenstream.bus.memory import MemoryBus
from krakenstream.config import BusSettings, Settings
from krakenstream.core import codec
from krakenstream.core.snapshot import Snapshot
from krakenstream.daemon.gateway.hub import LatestCache, LatestSeen, StreamHub
from krakenstream.daemon.metrics import Metrics
from krakenstream.daemon.wiring import make_bus
from krakenstream.errors import BackendUnavailable
from krakenstream.wire import TOO_SLOW
from test_bus_support import wait_until


async def test_latest_cache_shares_reads_and_drops_on_newer_snapshot() -> None:
    bus = MemoryBus()
    hub = StreamHub(bus, Metrics(), backlog=4)
    cache = LatestCache(hub, ttl=60.0)
    stored = [sample_snapshot(ts=1_000)]
    reads = 0
    release = asyncio.Event()  # the store answers once every reader has asked

    async def read() -> Snapshot | None:
        nonlocal reads
        reads += 1
        await release.wait()
        return stored[-1]

    asked = 0

    async def reader() -> bytes | None:
        nonlocal asked
        asked += 1
        if asked == 10:
            release.set()  # its read resumes only after this reader has reached the cache
        return await cache.get("ETH/USD", read)

    bodies = await asyncio.gather(*(reader() for _ in range(10)))
    assert reads == 1 and len(set(bodies)) == 1
    assert await cache.get("ETH/USD", read) == stored[0].to_json() and reads == 1
    # the tap saw a newer snapshot: the next answer reads the store again
    stored.append(sample_snapshot(ts=2_000))
    hub.latest.note(stored[-1])
    assert await cache.get("ETH/USD", read) == stored[-1].to_json() and reads == 2

    async def nothing() -> Snapshot | None:
        return None

    assert await cache.get("BTC/USD", nothing) is None
    assert "BTC/USD" not in cache._entries  # absent pairs are not kept

    async def down() -> Snapshot | None:
        raise BackendUnavailable("store down")

    with pytest.raises(BackendUnavailable):
        await cache.get("XRP/USD", down)


async def test_slow_client_is_cut_off_others_kept() -> None:
    hub = StreamHub(MemoryBus(), Metrics(), backlog=3)
    slow, fast = hub.add("ETH/USD"), hub.add("ETH/USD")
    other = hub.add("BTC/USD")
    for i in range(3):
        hub.publish("ETH/USD", f"m{i}")
        assert await fast.next() == f"m{i}"
    assert hub.client_count == 3 and hub.cut_off == 0
    hub.publish("ETH/USD", "m3")  # slow's fourth unread message: over its backlog
    assert slow.close_code == TOO_SLOW and not slow.items  # its backlog is freed at once
    assert hub.cut_off == 1 and hub.client_count == 2
    assert await slow.next() is None
    assert await fast.next() == "m3"
    assert other.close_code is None and not other.items
    hub.close_all(1001, "server shutting down")
    assert fast.close_code == 1001 and other.close_code == 1001


def test_latest_seen_builds_a_snapshot_only_when_read() -> None:
    seen = LatestSeen()
    a, b = sample_snapshot(1_000, "ETH/USD"), sample_snapshot(2_000, "BTC/USD")
    seen.note(a)
    seen.note(codec.Encoded.read("BTC/USD", codec.encode(b)))
    assert len(seen) == 2 and set(seen) == {"ETH/USD", "BTC/USD"} and "BTC/USD" in seen
    assert (seen.ts("ETH/USD"), seen.ts("BTC/USD"), seen.ts("SOL/USD")) == (1_000, 2_000, None)
    assert isinstance(seen._seen["BTC/USD"], codec.Encoded)  # noted as it came
    assert seen["ETH/USD"] is a and seen.get("BTC/USD") == b and seen.get("SOL/USD") is None
    assert seen["BTC/USD"] is seen["BTC/USD"]  # built once, then kept
    seen.note(codec.Encoded.of(sample_snapshot(3_000, "ETH/USD")))  # a newer one
    assert seen.ts("ETH/USD") == 3_000 and seen["ETH/USD"].ts == 3_000


async def test_the_kafka_tap_builds_snapshots_only_for_the_pairs_streamed(
        kafka_broker: Broker) -> None:
    settings = Settings()
    settings = settings.replace(
        bus=BusSettings(backend="kafka"),
        kafka=replace(settings.kafka, bootstrap=kafka_broker.bootstrap,
                      topic="kms.test.hub", session_timeout_ms=6000))
    bus = make_bus(settings)
    await bus.start()
    hub = StreamHub(bus, Metrics(), backlog=10)
    await hub.start()
    try:
        client = hub.add("ETH/USD")
        sent = [sample_snapshot(1_000 * i, pair) for i in range(1, 3)
                for pair in ("ETH/USD", "BTC/USD")]
        for s in sent:
            await bus.publish(s)
        for s in sent[0::2]:  # the streamed pair: each snapshot, in order, as its JSON
            message = await asyncio.wait_for(client.next(), 15)
            assert message is not None
            assert orjson.loads(message) == orjson.loads(orjson.dumps(
                {"type": "snapshot", "data": s.to_dict()}))
        assert await wait_until(lambda: hub.latest.ts("BTC/USD") == 2_000, 15)
        # the other pair's newest was noted as it came: nothing built until read
        assert isinstance(hub.latest._seen["BTC/USD"], codec.Encoded)
        assert hub.latest["BTC/USD"] == sent[3]
        assert hub.latest["ETH/USD"] == sent[2]
    finally:
        await hub.stop()
        await bus.close()
