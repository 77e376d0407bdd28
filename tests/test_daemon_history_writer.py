"""``daemon/history_writer.py``: the analysis role's history writer stores, then commits (a
store that fails is retried, a redelivery stored once), and a writer whose task dies says so at
once and still closes on stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaProducer

from conftest import Broker
from gateway_support import sample_snapshot
from krakenstream.bus.memory import MemoryBus
from krakenstream.config import BusSettings, Settings
from krakenstream.core import codec
from krakenstream.core.snapshot import Snapshot
from krakenstream.daemon.history_writer import HistoryWriter
from krakenstream.daemon.wiring import make_bus
from krakenstream.errors import BackendUnavailable
from krakenstream.store import RedisHistoryStore
from krakenstream.store.sqlite import SQLiteHistoryStore
from test_bus_support import T0, wait_until


class FlakyStore(SQLiteHistoryStore):
    """A real SQLite store whose first writes fail as if the disk were gone."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures

    async def add(self, snaps: Sequence[Snapshot]) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise BackendUnavailable("store down (test)")
        return await super().add(snaps)


@pytest.mark.slow
async def test_the_history_writer_commits_only_after_storing(tmp_path: Path) -> None:
    bus = MemoryBus()
    await bus.start()
    store = FlakyStore(tmp_path / "h.sqlite3", failures=3)
    await store.open()
    role = HistoryWriter(bus, store, group="g", poll_timeout=0.1)
    await role.start()
    snaps = [Snapshot("A/B", 1000 * i, None, i, 1, 1, ((10, 1),), ((11, 1),), 0)
             for i in range(1, 6)]
    for s in snaps:
        await bus.publish(s)
    await bus.publish(snaps[0])  # a redelivery: stored once
    for _ in range(200):  # up to 10 s
        if await store.count("A/B") >= 5:
            break
        await asyncio.sleep(0.05)
    await role.stop()
    await bus.close()
    assert await store.count("A/B") == 5
    assert role.stats.store_errors == 3
    assert role.stats.stored == 5 and role.stats.duplicates == 1
    await store.close()


class BrokenStore(SQLiteHistoryStore):
    """A real SQLite store with a bug: every write raises something that is not a backend
    failure, so the analysis role cannot retry it."""

    async def add(self, snaps: Sequence[Snapshot]) -> int:
        raise RuntimeError("a bug in the store (test)")


async def test_a_history_writer_task_that_dies_is_logged_at_once_and_stop_still_closes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = MemoryBus()
    await bus.start()
    store = BrokenStore(tmp_path / "h.sqlite3")
    await store.open()
    role = HistoryWriter(bus, store, group="g", poll_timeout=0.05)
    await role.start()
    await bus.publish(Snapshot("A/B", 1000, None, 1, 1, 1, ((10, 1),), ((11, 1),), 0))
    for _ in range(100):  # up to 5 s
        if any("a bug in the store" in r.getMessage() or r.exc_info for r in caplog.records
               if r.levelno >= logging.ERROR):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the history writer task died without a word")
    await role.stop()  # the failure was reported when it happened: stop closes, never raises
    assert role._sub is None
    await bus.close()
    await store.close()


async def test_from_kafka_into_redis_the_records_bytes_are_stored_as_they_came(
        kafka_broker: Broker, redis_server_url: str, redis_prefix: str) -> None:
    """The writer hands Redis the bytes the Kafka record carried (no snapshot built, none
    encoded again): a compact row another producer wrote in a longer, still valid msgpack
    form is stored byte for byte; a JSON record (the bus's form before) is stored compact;
    a malformed one is skipped; each reads back as the snapshot it was."""
    settings = Settings()
    settings = settings.replace(
        bus=BusSettings(backend="kafka"),
        kafka=replace(settings.kafka, bootstrap=kafka_broker.bootstrap,
                      topic="kms.test.writer", session_timeout_ms=6000))
    first, second, third = (sample_snapshot(T0 + 1_000 * i) for i in range(3))
    canonical = codec.encode(first)
    assert canonical[2] == 0xCF and canonical[11] < 0x80  # ts as uint64, then seq in a byte
    longer = canonical[:11] + b"\xcc" + canonical[11:]  # seq as a uint8: the same row
    assert codec.decode(longer).snapshot("ETH/USD", False) == first

    bus = make_bus(settings)
    await bus.start()
    store = RedisHistoryStore(redis_server_url, prefix=redis_prefix)
    await store.open()
    role = HistoryWriter(bus, store, group="g", poll_timeout=0.1)
    await role.start()
    try:
        raw = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
        await raw.start()
        try:
            for value in (longer, codec.encode(second)[:-3], second.to_json()):
                await raw.send_and_wait("kms.test.writer", value, key=b"ETH/USD")
        finally:
            await raw.stop()
        await bus.publish(third)
        assert await wait_until(lambda: role.stats.stored == 3, 15), role.stats
    finally:
        await role.stop()
        await bus.close()
    try:
        assert [s async for s in store.history("ETH/USD", order="asc", published_flags=True)] == [
            first, second, third]
    finally:
        await store.close()
    client = redis.Redis.from_url(redis_server_url)
    try:
        members = client.zrange(store.key("ETH/USD"), 0, -1)
    finally:
        client.close()
    assert members == [longer, codec.encode(second), codec.encode(third)]
    assert bus.stats().malformed == 1
