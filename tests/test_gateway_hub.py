"""The bus tap's side (gateway/hub.py): the latest cache and the WebSocket backlog policy."""

from __future__ import annotations

import asyncio

import pytest

from gateway_support import sample_snapshot
from krakenstream.bus.memory import MemoryBus
from krakenstream.core.snapshot import Snapshot
from krakenstream.daemon.gateway.hub import LatestCache, StreamHub
from krakenstream.daemon.metrics import Metrics
from krakenstream.errors import BackendUnavailable
from krakenstream.wire import TOO_SLOW


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
    hub.latest["ETH/USD"] = stored[-1]
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
