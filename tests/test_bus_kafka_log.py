"""aiokafka's refusal of an idempotent producer, reported once in the bus's own words
(bus/kafka_log.py): no ERROR line at every start against a broker without idempotence."""

from __future__ import annotations

import logging

import pytest

from conftest import Broker
from krakenstream.bus.kafka import KafkaBus, KafkaOptions
from krakenstream.bus.kafka_log import _TRYING_IDEMPOTENCE, _QuietIdempotenceRefusal
from test_bus_support import snap, wait_until

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
