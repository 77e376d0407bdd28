"""End to end: simulator → feed → orderbook role → bus → analysis role → history store.

Once on the embedded stack (in-process bus, SQLite) and once on the scaled-out one (Kafka
protocol broker, Redis). The simulator is paused around every publish tick, so each stored
snapshot must equal, level for level, the simulator's own book at that tick.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import pytest

from conftest import Broker
from krakenstream.config import Settings, load_settings
from krakenstream.core.checksum import checksum
from krakenstream.core.snapshot import Snapshot
from krakenstream.daemon.services import Services, build_services
from krakenstream.sim.server import SimServer

#: the whole pipeline over real seconds of ticks
pytestmark = pytest.mark.slow

PAIRS = ["ETH/USD", "BTC/USD", "SOL/USD"]
INTERVAL = 0.5
DEPTH = 25


def pipeline_settings(home: Path, sim_url: str, **extra: str) -> Settings:
    env = {
        "KMS_HOME": str(home),
        "KMS_KRAKEN_URL": sim_url,
        "KMS_KRAKEN_PAIRS": ",".join(PAIRS),
        "KMS_KRAKEN_DEPTH": str(DEPTH),
        "KMS_KRAKEN_SNAPSHOT_INTERVAL": str(INTERVAL),
        "KMS_KRAKEN_HEARTBEAT_TIMEOUT": "2",
        "KMS_AUTH_BCRYPT_COST": "4",
        **extra,
    }
    return load_settings(env=env)


async def paused_ticks(sim: SimServer, ticks: int) -> dict[tuple[str, int], tuple]:  # type: ignore[type-arg]
    """Pause the simulator across the next ``ticks`` publish ticks; return its views."""
    views: dict[tuple[str, int], tuple] = {}  # type: ignore[type-arg]
    for _ in range(ticks):
        tick = (math.floor(time.time() / INTERVAL) + 1) * INTERVAL
        await asyncio.sleep(max(0.0, tick - 0.15 - time.time()))
        await sim.pause()
        await asyncio.sleep(max(0.0, tick + 0.12 - time.time()))
        for pair in PAIRS:
            views[(pair, round(tick * 1000))] = sim.book_view(pair, DEPTH)
        await sim.resume()
    return views


async def stored(services: Services) -> dict[tuple[str, int], Snapshot]:
    assert services.store is not None
    out: dict[tuple[str, int], Snapshot] = {}
    for pair in PAIRS:
        async for snap in services.store.history(pair, order="asc"):
            assert (pair, snap.ts) not in out, "stored twice"
            out[(pair, snap.ts)] = snap
    return out


async def wait_until(predicate, within: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def check_against_sim(history: dict[tuple[str, int], Snapshot],
                      views: dict[tuple[str, int], tuple]) -> None:  # type: ignore[type-arg]
    matched = 0
    for key, (bids, asks) in views.items():
        snap = history.get(key)
        assert snap is not None, f"no snapshot stored for {key}"
        assert list(snap.bids) == bids and list(snap.asks) == asks, f"{key} differs from sim"
        matched += 1
    for snap in history.values():
        assert checksum(snap.asks[:10], snap.bids[:10]) == snap.checksum
    assert matched == len(views) > 0


def check_sequences(history: dict[tuple[str, int], Snapshot]) -> None:
    """Per pair, seq runs 1..n with no hole and no repeat; only the first follows a gap."""
    for pair in PAIRS:
        snaps = sorted((s for (p, _), s in history.items() if p == pair), key=lambda s: s.ts)
        assert [s.seq for s in snaps] == list(range(1, len(snaps) + 1)), pair
        assert snaps[0].gap_before and not any(s.gap_before for s in snaps[1:]), pair
        gaps = {b.ts - a.ts for a, b in zip(snaps, snaps[1:], strict=False)}
        assert gaps <= {round(INTERVAL * 1000)}, f"{pair}: ticks not one interval apart: {gaps}"


async def run_and_check(settings: Settings, sim: SimServer, ticks: int = 6) -> Services:
    services = await build_services(settings, roles=["orderbook", "analysis"])
    try:
        assert services.orderbook is not None
        await asyncio.wait_for(services.orderbook.feed.wait_live(), timeout=10)
        views = await paused_ticks(sim, ticks)
        last = max(ts for _, ts in views)

        async def caught_up() -> bool:
            h = await stored(services)
            return all((p, last) in h for p in PAIRS)

        await wait_until(caught_up, 30, "the analysis role to store the last tick")
        history = await stored(services)
        check_against_sim(history, views)
        check_sequences(history)
    except BaseException:
        await services.close()
        raise
    return services


async def test_embedded_pipeline(kms_home: Path) -> None:
    async with SimServer(pairs=PAIRS, seed=11, rate=20) as sim:
        services = await run_and_check(pipeline_settings(kms_home, sim.url), sim)
        await services.close()


@pytest.mark.integration
async def test_kafka_redis_pipeline(kms_home: Path, kafka_broker: Broker,
                                    redis_prefix: str, redis_server_url: str) -> None:
    async with SimServer(pairs=PAIRS, seed=12, rate=20) as sim:
        settings = pipeline_settings(
            kms_home, sim.url,
            KMS_BUS_BACKEND="kafka", KMS_KAFKA_BOOTSTRAP=kafka_broker.bootstrap,
            KMS_KAFKA_SESSION_TIMEOUT_MS="6000", KMS_KAFKA_GROUP="kms-e2e",
            KMS_STORE_BACKEND="redis", KMS_REDIS_URL=redis_server_url,
            KMS_REDIS_PREFIX=redis_prefix,
        )
        services = await run_and_check(settings, sim)
        await services.close()


@pytest.mark.integration
async def test_broker_restart_loses_nothing_acknowledged(
    kms_home: Path, kafka_broker: Broker, redis_prefix: str, redis_server_url: str
) -> None:
    """The broker dies mid-run and comes back: snapshots published meanwhile wait in the
    bus's buffer and arrive afterwards; nothing is stored twice, no sequence has a hole.

    (tansu keeps nothing across a restart, so before killing it we let the analysis role
    store what was already acknowledged; a real Kafka broker would keep it.)"""
    async with SimServer(pairs=PAIRS, seed=13, rate=20) as sim:
        settings = pipeline_settings(
            kms_home, sim.url,
            KMS_BUS_BACKEND="kafka", KMS_KAFKA_BOOTSTRAP=kafka_broker.bootstrap,
            KMS_KAFKA_SESSION_TIMEOUT_MS="6000", KMS_KAFKA_GROUP="kms-restart",
            KMS_STORE_BACKEND="redis", KMS_REDIS_URL=redis_server_url,
            KMS_REDIS_PREFIX=redis_prefix,
        )
        services = await build_services(settings, roles=["orderbook", "analysis"])
        try:
            ob = services.orderbook
            assert ob is not None and services.history_writer is not None
            await asyncio.wait_for(ob.feed.wait_live(), timeout=10)

            async def stored_all_published() -> bool:
                return len(await stored(services)) >= ob.stats.published > 0

            await wait_until(stored_all_published, 30, "the first snapshots to be stored")
            before = ob.stats.published
            kafka_broker.stop(grace=0.2)

            async def published_since(count: int, n: int) -> bool:
                return ob.stats.published >= count + n

            # five ticks published into the bus's buffer while the broker is down
            await wait_until(lambda: published_since(before, 5 * len(PAIRS)), 30,
                             "five ticks published while the broker is down")
            kafka_broker.start()
            restarted = ob.stats.published
            await wait_until(lambda: published_since(restarted, len(PAIRS)), 30,
                             "a tick published after the broker is back")
            await ob.stop()  # no more publishing: everything published must now arrive
            published = ob.stats.published

            async def all_stored() -> bool:
                return len(await stored(services)) >= published

            await wait_until(all_stored, 40, "every published snapshot to be stored")
            history = await stored(services)
            assert len(history) == published
            assert services.bus.stats().dropped == 0
            check_sequences(history)
        finally:
            await services.close()
