"""One line when Kafka goes away, one when it is back, with counts (issue 14 item 12).

While a broker is down aiokafka logs every failed attempt of every client at ERROR: with a
tansu broker killed for 12 s under one bus, a group member and a tap, 1,570 lines (1,177
``Unable connect to node``, 228 ``Failed fetch messages``, 114 heartbeat errors, 48 produce
errors), about 130 a second per process, and as many again in every other role. They all say
one thing. :class:`KafkaLink` says it once:

- ``Kafka at HOST unreachable: <the first error>; snapshots are buffered and retried, Kafka
  client errors counted until it is back`` (WARNING) on the first failure after it worked;
- ``Kafka at HOST reachable again after 12.3 s; 1570 Kafka client errors counted meanwhile``
  (INFO) on the first success once no failure came for :data:`QUIET` seconds (a restarting
  broker answers one request and fails the next: one pair of lines, not a dozen).

Failures come from two sides: our own code (a send not acknowledged, a consumer that does not
start: :meth:`KafkaLink.failed`), and aiokafka's loggers, whose records all go to
:class:`ClientLogCounter`, a handler on the ``aiokafka`` logger (which no longer propagates).
While Kafka is unreachable every record is counted, not logged. While it works, a record that
says a connection failed (:func:`is_unreachable`: "Unable connect", a connection error, a
node not ready, a timeout, the coordinator lost) starts an outage; any other (a commit
refused, a producer refused idempotence) is other trouble (:meth:`KafkaLink.trouble`), let
through at most once per logger every :data:`REPEAT_EVERY` seconds, saying how many like it
were held back; our own code's commit failures go the same way. Everything is logged
again at DEBUG (``aiokafka <logger>: <message>``) for whoever runs at that level. Successes
(a send acknowledged, records fetched, a commit, a metadata answer) come from our code
(:meth:`KafkaLink.worked`).

A broker without idempotence (tansu, Kafka before 0.11, an ACL without IDEMPOTENT_WRITE)
refuses a producer id: aiokafka logs ``ERROR Unexpected error during InitProducerIdRequest``
and raises, and :class:`~krakenstream.bus.kafka.KafkaBus` falls back to ``acks=all`` without
idempotence, saying so once in a WARNING (``refused an idempotent producer``). That one line
is dropped at its logger while the bus is the one asking (:func:`start_producer`): an ERROR
at every start for a case the bus handles reads as a fault (and would count as an outage
here); the same line from any other producer, or later in a producer's life, stays.

One link per process: aiokafka's loggers are global, and one daemon process has one bus.
:func:`link` returns it; :func:`install` hooks the handler once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaProducer

log = logging.getLogger("krakenstream.bus.kafka")

#: seconds without a failure before a success counts as "back"
QUIET = 2.0
#: an aiokafka record that is not about reaching the broker is let through at most once per
#: logger in this many seconds (the others are counted in the next one let through)
REPEAT_EVERY = 60.0
#: words of aiokafka's messages that mean the broker cannot be reached (lower case)
_UNREACHABLE = ("connect", "not ready", "timed out", "timeout", "coordinator dead",
                "coordinator not available", "no route")


def is_unreachable(message: str) -> bool:
    """Whether an aiokafka message says the broker could not be reached."""
    text = message.lower()
    return any(word in text for word in _UNREACHABLE)


class KafkaLink:
    """Whether Kafka works for this process, as its failures and successes say."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: the broker(s) shown in the lines (the bus says which: ``kafka.bootstrap``)
        self.where = "?"
        #: since when it fails (monotonic), or None while it works
        self.down_since: float | None = None
        self._last_failure = float("-inf")
        #: client errors counted (not logged) during the current outage, and in all
        self.errors_now = 0
        self.errors_total = 0
        #: outages seen (each one a pair of lines)
        self.outages = 0
        #: per kind of other trouble: when it was last logged, and how many held back since
        self._shown: dict[str, tuple[float, int]] = {}

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, detail: str) -> None:
        """Something failed; the first failure after it worked is logged (WARNING)."""
        now = self._clock()
        self._last_failure = now
        self.errors_now += 1
        self.errors_total += 1
        if self.down_since is not None:
            log.debug("Kafka still unreachable: %s", detail)
            return
        self.down_since = now
        self.outages += 1
        log.warning("Kafka at %s unreachable: %s; snapshots are buffered and retried, Kafka "
                    "client errors counted until it is back", self.where, detail)

    def trouble(self, kind: str, detail: str, level: int = logging.WARNING) -> None:
        """A failure that does not mean the broker is unreachable (a commit refused or not
        answered, a producer refusing idempotence): counted while it is down, else logged
        at most once per ``kind`` every :data:`REPEAT_EVERY` seconds, saying how many like
        it were held back."""
        self.errors_total += 1
        if self.down_since is not None:
            self.errors_now += 1
            log.debug("Kafka %s", detail)
            return
        now = self._clock()
        at, held = self._shown.get(kind, (float("-inf"), 0))
        if now - at < REPEAT_EVERY:
            self._shown[kind] = (at, held + 1)
            return
        self._shown[kind] = (now, 0)
        more = f" ({held} more like it held back)" if held else ""
        log.log(level, "Kafka %s%s", detail, more)

    def worked(self) -> None:
        """Something worked: after :data:`QUIET` seconds without a failure, it is back."""
        if self.down_since is None:
            return
        now = self._clock()
        if now - self._last_failure < QUIET:
            return
        log.info("Kafka at %s reachable again after %.1f s; %d Kafka client errors counted "
                 "meanwhile", self.where, now - self.down_since, self.errors_now)
        self.down_since = None
        self.errors_now = 0


class ClientLogCounter(logging.Handler):
    """On the ``aiokafka`` logger (which no longer propagates): each record is a failure the
    process's link counts; it is logged again only at DEBUG."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot format is still a failure to count
            message = str(record.msg)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("aiokafka %s: %s", record.name, message)
        if record.levelno < logging.WARNING:
            return
        if _LINK.down or is_unreachable(message):
            _LINK.failed(f"aiokafka: {message}")
        else:
            _LINK.trouble(record.name, f"client ({record.name}): {message}", record.levelno)


_LINK = KafkaLink()


def link() -> KafkaLink:
    """This process's link (see the module docstring)."""
    return _LINK


def fresh_link(clock: Callable[[], float] = time.monotonic) -> KafkaLink:
    """Replace this process's link with a new one (a test that starts from "it works")."""
    global _LINK
    _LINK = KafkaLink(clock)
    return _LINK


def install() -> None:
    """Count aiokafka's records instead of letting them through (idempotent)."""
    client = logging.getLogger("aiokafka")
    if not any(isinstance(h, ClientLogCounter) for h in client.handlers):
        client.addHandler(ClientLogCounter())
    client.propagate = False


# -- the refusal of an idempotent producer, reported by the bus itself ----------------------

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
