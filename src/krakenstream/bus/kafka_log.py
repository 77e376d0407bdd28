"""aiokafka's log lines that the Kafka bus reports in its own words.

A broker without idempotence (tansu, Kafka before 0.11, an ACL without IDEMPOTENT_WRITE)
refuses a producer id: aiokafka logs ``ERROR Unexpected error during InitProducerIdRequest``
and raises, and :class:`~krakenstream.bus.kafka.KafkaBus` falls back to ``acks=all`` without
idempotence, saying so once in a WARNING (``refused an idempotent producer``). An ERROR at
every start for a case the bus handles reads as a fault, so that one line is dropped while
the bus is the one asking (:func:`start_producer`); the same line from any other producer, or
later in a producer's life, stays.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging

from aiokafka import AIOKafkaProducer

#: set while this bus starts an idempotent producer, whose refusal it reports itself
_TRYING_IDEMPOTENCE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "kms_trying_idempotence", default=False)


class _QuietIdempotenceRefusal(logging.Filter):
    """aiokafka logs an ERROR (``Unexpected error during InitProducerIdRequest``) when a broker
    without idempotence (tansu, Kafka < 0.11, no IDEMPOTENT_WRITE) refuses a producer id,
    then raises; while this bus is the one asking, that is expected and it says so in its
    own WARNING (``refused an idempotent producer``), so the ERROR line at every start is
    dropped. The same line from any other producer, or later in a producer's life, stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_TRYING_IDEMPOTENCE.get()
                    and str(record.msg).startswith("Unexpected error during InitProducerIdRequest"))


async def start_producer(producer: AIOKafkaProducer, within: float, *, idempotent: bool
                         ) -> None:
    """``producer.start()`` within ``within`` seconds, aiokafka's refusal ERROR quieted if it asks
    for idempotence (the caller reports the refusal)."""
    token = _TRYING_IDEMPOTENCE.set(idempotent)
    try:
        await asyncio.wait_for(producer.start(), within)
    finally:
        _TRYING_IDEMPOTENCE.reset(token)


_SENDER_LOG = logging.getLogger("aiokafka.producer.sender")
if not any(isinstance(f, _QuietIdempotenceRefusal) for f in _SENDER_LOG.filters):
    _SENDER_LOG.addFilter(_QuietIdempotenceRefusal())
