"""aiokafka's lines reported in the bus's own words (bus/kafka_log.py).

One line when Kafka goes away, one when it is back: the link alone with a hand-turned clock,
then a private tansu broker killed and restarted under a bus, a group member and a tap,
counting every line logged (issue 14 item 12). And the refusal of an idempotent producer,
reported once: no ERROR line at every start against a broker without idempotence."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import pytest

from conftest import Broker
from krakenstream.bus import kafka_log
from krakenstream.bus.kafka import KafkaBus, KafkaOptions, KafkaSubscription
from krakenstream.bus.kafka_log import _TRYING_IDEMPOTENCE, _QuietIdempotenceRefusal
from test_bus_support import snap, wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Written(logging.Handler):
    """What reaches the root logger's handlers: what the daemon's log would get (pytest's
    caplog also hooks loggers that do not propagate, as aiokafka's no longer do)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_an_outage_is_one_line_down_and_one_back_with_the_count(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    link = kafka_log.KafkaLink(clock)
    link.where = "kafka:9092"
    link.worked()  # working already: nothing to say
    for i in range(500):
        clock.now += 0.01
        link.failed(f"aiokafka: Unable connect to node with id 1 ({i})")
    clock.now += 1.0
    link.worked()  # too soon after the last failure: a restarting broker
    assert link.down
    clock.now += kafka_log.QUIET
    link.worked()
    link.worked()
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert loud == [
        "Kafka at kafka:9092 unreachable: aiokafka: Unable connect to node with id 1 (0); "
        "snapshots are buffered and retried, Kafka client errors counted until it is back",
        "Kafka at kafka:9092 reachable again after 8.0 s; 500 Kafka client errors counted "
        "meanwhile",
    ]
    assert not link.down and link.errors_total == 500 and link.outages == 1


def test_aiokafkas_records_are_counted_not_passed_on() -> None:
    kafka_log.install()
    link = kafka_log.fresh_link()
    written = Written()
    root = logging.getLogger()
    root.addHandler(written)
    try:
        for _ in range(100):
            logging.getLogger("aiokafka.conn").error("Unable connect to node with id 111")
        assert link.errors_total == 100 and link.down
        # what reaches the root's handlers (the daemon's log): our one line, no aiokafka's
        assert [r.name for r in written.records if r.name.startswith("aiokafka")] == []
        assert sum("unreachable" in r.getMessage() for r in written.records) == 1
    finally:
        root.removeHandler(written)
        kafka_log.fresh_link()


def test_other_client_errors_are_let_through_once_a_minute(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    counter = kafka_log.ClientLogCounter()
    link = kafka_log.fresh_link(clock)
    logger = logging.getLogger("aiokafka.consumer.group_coordinator")
    try:
        def commit_failed() -> None:
            counter.handle(logger.makeRecord(
                logger.name, logging.ERROR, __file__, 1, "OffsetCommit failed for group %s: %s",
                ("g", "UnknownTopicOrPartitionError"), None))

        for _ in range(100):
            commit_failed()
        clock.now += kafka_log.REPEAT_EVERY
        commit_failed()
        shown = [r.getMessage() for r in caplog.records]
        assert shown == [
            "Kafka client (aiokafka.consumer.group_coordinator): OffsetCommit failed for group "
            "g: UnknownTopicOrPartitionError",
            "Kafka client (aiokafka.consumer.group_coordinator): OffsetCommit failed for group "
            "g: UnknownTopicOrPartitionError (99 more like it held back)"]
        assert not link.down and link.errors_total == 101
    finally:
        kafka_log.fresh_link()


@pytest.mark.integration
@pytest.mark.slow
async def test_a_broker_killed_and_restarted_is_two_lines(kafka_broker: Broker) -> None:
    written = Written()
    root = logging.getLogger()
    level = root.level
    root.addHandler(written)
    root.setLevel(logging.INFO)
    link = kafka_log.fresh_link()
    options = KafkaOptions(bootstrap=kafka_broker.bootstrap,
                           topic=f"kms-test-{uuid.uuid4().hex[:8]}", session_timeout_ms=6000)
    bus = KafkaBus(options, backoff_max=1.0, request_timeout=2.0)
    group, tap = bus.subscribe("kms-test-outage"), bus.subscribe(None)
    received = {"kms-test-outage": 0, None: 0}
    stop = asyncio.Event()

    async def publish() -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            await bus.publish(snap("ETH/USD", seq))
            await asyncio.sleep(0.05)

    async def read(sub: KafkaSubscription) -> None:
        while not stop.is_set():
            got = await sub.get_batch(100, 0.3)
            received[sub.group] += len(got)
            await sub.commit()  # a group's commit must not hang on a restarted broker

    async with bus:
        await group.start()
        await tap.start()
        tasks = [asyncio.create_task(publish()), asyncio.create_task(read(group)),
                 asyncio.create_task(read(tap))]
        try:
            assert await wait_until(lambda: min(received.values()) > 20, 30)
            mark = len(written.records)
            await asyncio.to_thread(kafka_broker.stop, 0.5)
            assert await wait_until(lambda: link.errors_now >= 20, 30)
            await asyncio.to_thread(kafka_broker.start)
            assert await wait_until(lambda: not link.down, 60)
            # both readers get snapshots again: the history writer's group too
            after = dict(received)
            assert await wait_until(lambda: all(received[g] > after[g] + 20 for g in after), 60)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            with contextlib.suppress(Exception):
                await group.close()
                await tap.close()
            root.removeHandler(written)
            root.setLevel(level)
    lines = written.records[mark:]
    loud = [r.getMessage() for r in lines if r.levelno >= logging.WARNING]
    down = [m for m in loud if " unreachable: " in m]
    back = [r.getMessage() for r in lines if " reachable again after " in r.getMessage()]
    assert len(down) == 1 and len(back) == 1, loud
    assert int(back[0].split("; ")[1].split()[0]) >= 20  # the errors it counted instead
    # beside them, a few other client errors at most, once a minute each (tansu's memory
    # storage loses the topic in a restart: commits are refused for a while)
    assert len(lines) <= 12, [r.getMessage() for r in lines]
    assert not [r for r in lines if r.name.startswith("aiokafka")]


REFUSAL = "Unexpected error during InitProducerIdRequest: %s"


async def test_starting_on_a_broker_without_idempotence_logs_no_error(
        kafka_broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    bus = KafkaBus(KafkaOptions(bootstrap=kafka_broker.bootstrap, topic="kms.test.idem"))
    await bus.start()
    try:
        await bus.publish(snap())
        assert await wait_until(lambda: bus.stats().published >= 1, 30)
    finally:
        await bus.close()
    assert not bus.idempotent  # tansu refuses a producer id: the bus fell back
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    said = [r.getMessage() for r in caplog.records if r.name == "krakenstream.bus.kafka"]
    assert sum("refused an idempotent producer" in m for m in said) == 1


def test_only_the_bus_own_attempt_is_quieted() -> None:
    record = logging.LogRecord("aiokafka.producer.sender", logging.ERROR, __file__, 1,
                               REFUSAL, ("UnknownError",), None)
    other = logging.LogRecord("aiokafka.producer.sender", logging.ERROR, __file__, 1,
                              "Unexpected error in sender routine", None, None)
    quiet = _QuietIdempotenceRefusal()
    assert quiet.filter(record)  # outside the bus's start: kept
    token = _TRYING_IDEMPOTENCE.set(True)
    try:
        assert not quiet.filter(record)
        assert quiet.filter(other)
    finally:
        _TRYING_IDEMPOTENCE.reset(token)
