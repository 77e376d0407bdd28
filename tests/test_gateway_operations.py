"""``/health`` and ``/metrics`` (gateway/operations.py)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from gateway_support import Stack, eventually, login, sample_snapshot, wait_snapshots
from krakenstream.bus.memory import MemoryBus
from krakenstream.config import KrakenSettings
from krakenstream.daemon.gateway.operations import HEALTH_PAIR_PROBLEMS, HEALTH_PAIRS, feed_health
from krakenstream.daemon.refused import RefusedPairs
from krakenstream.feed.status import ConnectionStatus, PairState, PairStatus
from krakenstream.store.sqlite import SQLiteHistoryStore


async def test_store_closed_is_503_and_health_degraded(gw: Stack) -> None:
    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw)
    health = (await c.get("/health")).json()
    assert health["status"] == "ok", health
    assert health["feed"]["pairs"]["ETH/USD"]["state"] == "live"
    assert health["store"] == {"backend": "sqlite", "healthy": True}
    assert health["bus"]["backend"] == "memory" and health["bus"]["published"] >= 1

    assert gw.services.history_writer is not None and gw.services.store is not None
    await gw.services.history_writer.stop(drain=False)
    await gw.services.store.close()
    for url in ("/api/analysis/latest/ETH-USD", "/api/analysis/history/ETH-USD",
                "/api/pairs"):
        r = await c.get(url, headers=gw.auth)
        assert r.status_code == 503, (url, r.text)
        assert r.json()["code"] == "unavailable" and "history database" in r.json()["error"]
    health = (await c.get("/health")).json()
    assert health["status"] == "degraded"
    assert health["store"]["healthy"] is False
    assert any("store" in p for p in health["problems"])


@pytest.mark.slow
async def test_metrics(gw: Stack) -> None:
    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw, n=2)
    await c.get("/api/analysis/latest/ETH%2FUSD", headers=gw.auth)
    await c.get("/api/analysis/latest/ETH-USD")
    text = (await c.get("/metrics")).text
    assert ('kms_http_requests_total{method="GET",route="/api/analysis/latest/{pair}",'
            'status="200"} 1.0') in text
    assert ('kms_http_requests_total{method="GET",route="/api/analysis/latest/{pair}",'
            'status="401"} 1.0') in text
    for name in ('kms_feed_frames{pair="ETH/USD"}', "kms_feed_checksum_mismatches",
                 "kms_feed_resyncs", "kms_feed_reconnects", "kms_snapshots_published_total",
                 "kms_snapshots_stored_total", "kms_publish_to_store_seconds_bucket",
                 "kms_bus_published", "kms_http_request_seconds_bucket", "kms_ws_clients"):
        assert name in text, name


def test_feed_health_sums_up_connections_and_caps_the_problems() -> None:
    """Thousands of pairs and several connections: one line per connection down, at most
    20 pairs named, the rest counted; the summed-up ``connection`` keeps its fields."""
    class Role:
        settings = KrakenSettings()
        refused = RefusedPairs(60.0)

        class feed:  # noqa: N801 - stands for the role's FeedPool
            over_max_pairs = 0

        def connection(self) -> ConnectionStatus:
            return ConnectionStatus(url="ws://127.0.0.1:1/v2", name="pool", connected=False,
                                    pairs=3000)

        def connections(self) -> list[ConnectionStatus]:
            up = ConnectionStatus(url="ws://127.0.0.1:1/v2", name="1", state="connected",
                                  connected=True, pairs=200)
            down = ConnectionStatus(url="ws://127.0.0.1:1/v2", name="2", state="waiting",
                                    pairs=200, last_error="connection closed: 1006")
            return [up, down]

        def status(self) -> dict[str, PairStatus]:
            return {f"P{i:04d}/USD": PairStatus(f"P{i:04d}/USD", state=(
                PairState.STALE if i < 200 else PairState.LIVE)) for i in range(3000)}

    feed, problems = feed_health(Role())  # type: ignore[arg-type]
    assert feed["states"] == {"stale": 200, "live": 2800}
    assert [c["name"] for c in feed["connections"]] == ["1", "2"]
    assert feed["connection"]["connected"] is False
    # a probe's answer stays small: 50 pairs (those not live), the rest counted
    assert len(feed["pairs"]) == HEALTH_PAIRS and feed["pairs_omitted"] == 3000 - HEALTH_PAIRS
    assert all(p["state"] == "stale" for p in feed["pairs"].values())
    assert problems[:2] == ["feed: not connected",
                            "feed: connection 2 is waiting (connection closed: 1006)"]
    named = [p for p in problems if p.endswith(" is stale")]
    assert len(named) == HEALTH_PAIR_PROBLEMS
    assert problems[-1] == "feed: 180 more pairs not live (200 of 3000)"


async def _status(s: Stack) -> dict[str, Any]:
    health: dict[str, Any] = (await s.client.get("/health")).json()
    return health


@pytest.mark.slow
async def test_history_that_cannot_be_written_is_degraded(gw: Stack) -> None:
    """A full disk (SQLite's own limit standing in for it): the store still answers its read
    probe, but history is not written, and /health must say so (issue 14 item 10)."""
    await wait_snapshots(gw)
    store = gw.services.store
    assert isinstance(store, SQLiteHistoryStore)
    assert (await _status(gw))["status"] == "ok"

    def cap(pages: int | None) -> None:
        assert store._wconn is not None
        now = store._wconn.execute("PRAGMA page_count").fetchone()[0]
        store._wconn.execute(f"PRAGMA max_page_count = {pages or now}")

    await store._write(cap, None)

    async def full() -> dict[str, Any] | None:
        health = await _status(gw)
        return health if health["status"] == "degraded" else None

    health = await eventually(full)
    assert health["store"]["healthy"] is True  # reads still work: the probe alone said ok
    assert health["history"]["writing"] is False
    assert "database or disk is full" in health["history"]["last_error"]
    assert any(p.startswith("history: cannot write for ") and p.endswith(
        "database or disk is full") for p in health["problems"]), health["problems"]
    assert "kms_history_write_failing 1.0" in (await gw.client.get("/metrics")).text
    await store._write(cap, 1_000_000)  # room again: it writes again, and says so

    async def ok() -> bool:
        return (await _status(gw))["status"] == "ok"

    await eventually(ok, within=20)


@pytest.mark.slow
async def test_a_role_whose_task_died_is_degraded(gw: Stack) -> None:
    await wait_snapshots(gw)
    role = gw.services.orderbook
    assert role is not None

    async def boom(ts_ms: int) -> int:
        raise RuntimeError("boom")

    role.publish_tick = boom  # type: ignore[method-assign]

    async def dead() -> list[str]:
        return [p for p in (await _status(gw))["problems"] if "ticker stopped" in p]

    assert await eventually(dead) == [
        "orderbook role: publish ticker stopped (RuntimeError: boom): no more snapshots"]
    assert "kms_health_problems 1.0" in (await gw.client.get("/metrics")).text


@pytest.mark.slow
async def test_snapshots_lost_on_the_way_to_history_are_degraded(gw: Stack) -> None:
    """The history writer stalls (its store hangs); the bus's group queue fills and drops:
    /health says snapshots are being lost until the queue has caught up."""
    await wait_snapshots(gw)
    store = gw.services.store
    assert store is not None
    release = asyncio.Event()
    add = store.add

    async def stalled(snaps: Any) -> int:
        await release.wait()
        return await add(snaps)

    store.add = stalled  # type: ignore[method-assign]
    bus = gw.services.bus
    assert isinstance(bus, MemoryBus)

    async def flood() -> None:  # more than the group's queue holds, again and again
        i = 0
        while True:
            for _ in range(100):
                i += 1
                await bus.publish(sample_snapshot(1_700_000_000_000 + i, pair="ZZZ/USD"))
            await asyncio.sleep(0.01)

    async def losing() -> bool:
        return any("dropped on their way to history" in p
                   for p in (await _status(gw))["problems"])

    flooding = asyncio.create_task(flood())
    try:
        await eventually(losing)
        assert "kms_bus_losing 1.0" in (await gw.client.get("/metrics")).text
    finally:
        flooding.cancel()
    release.set()

    async def caught_up() -> bool:
        return not await losing()

    await eventually(caught_up, within=20)


class ThreadOfCollect:
    """A collector in the daemon's registry that notes which thread collected it."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def collect(self) -> list[Any]:
        self.threads.append(threading.get_ident())
        return []


async def test_metrics_are_rendered_off_the_event_loop(gw: Stack) -> None:
    """The registry is rendered in a worker thread: 3,000 pairs' series took 240-440 ms, and
    on the event loop that stopped the ticks, the feed and the history writer meanwhile."""
    probe = ThreadOfCollect()
    gw.services.metrics.registry.register(probe)
    probe.threads.clear()  # registering collected it once, to describe it
    r = await gw.client.get("/metrics")
    assert r.status_code == 200 and "kms_snapshots_stored_total" in r.text
    assert probe.threads and threading.get_ident() not in probe.threads
