"""The Kafka snapshot bus (aiokafka). (Long on purpose: the producer side, the consumer side and
their sizing keep one delivery contract, written once below; aiokafka's log records are
handled apart, in :mod:`.kafka_log`.)

One topic, key = pair, value = the snapshot's compact form (:mod:`krakenstream.core.codec`: a
version byte, then msgpack of scaled integers, the pair being the key), the form history
stores. JSON values (``Snapshot.to_json()``: what this bus wrote before, and the codec's own
fallback for a number beyond 64 bits) are still read, told apart by their first byte. At depth
10 the compact form is 160 bytes against 882, and costs 3.7 µs to write against 17.7 µs and
9.4 µs to read back into a Snapshot against 33 µs: at 3,000 pairs, JSON took about a sixth of a
core between the orderbook role, the history writer and the gateway's tap, each of which read
every snapshot.

Delivery is **at-least-once**. ``publish`` only encodes the snapshot (its record's value, a few
µs: done in the publisher's turns on the event loop, while the last send waits for its
acknowledgement, instead of all at once by the sender after it) and appends it to a bounded
buffer; a background task drains it into an ``acks="all"`` producer (idempotent when the broker
allows it) and counts a snapshot *published* only once the broker acknowledged it. A send that
fails puts its snapshots back at the front of the buffer, the producer is recreated with
backoff, and they are sent again, so a broker that is down or restarting never crashes the
daemon nor blocks the caller; while it is away the buffer fills and then drops its *oldest*
snapshots, counted.

The buffer holds at least ``buffer_ticks`` whole publish ticks of every pair the publisher
announced (:meth:`KafkaBus.size_for_pairs`; ``kafka.buffer_size`` is the floor), for the same
reason as the in-process bus's group queues: a tick of N pairs arrives as N snapshots at once,
and a buffer smaller than one tick loses part of every tick while a broker restarts. Reaching
the bound is logged once at WARNING, and the recovery (the buffer back under half full) at
INFO with how many were dropped; the holes are marked ``gap_before`` by history readers from
each snapshot's ``origin`` and ``seq`` (:mod:`krakenstream.core.gaps`).
A snapshot whose acknowledgement was lost in a restart can be written twice; the history
store dedupes on pair + ts.

The key (the pair) puts every snapshot of one pair in one partition, so one pair's snapshots
are read in the order they were published. Consumers commit offsets explicitly, after the
caller has stored what ``get_batch`` returned; a member that dies before committing leaves its
records to the next member of its group.

While the broker is away, one line says so and one says when it is back, with how many Kafka
client errors were counted meanwhile (:mod:`.kafka_log`): aiokafka's own ERROR lines, 130 a
second per process, are counted, not logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NodeNotReadyError,
    RecordTooLargeError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
)
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from ..core import codec
from ..core.backoff import backoff
from ..core.codec import Encoded
from ..core.snapshot import Snapshot
from ..errors import BackendUnavailable
from . import kafka_log
from .base import BusStats, StartsAndCloses, SubscriptionStats
from .kafka_log import start_producer

log = logging.getLogger(__name__)

_T = TypeVar("_T")


#: errors that mean "the broker is not reachable right now", as opposed to "it said no"
_UNREACHABLE: tuple[type[BaseException], ...] = (
    KafkaConnectionError,
    NodeNotReadyError,
    RequestTimedOutError,
    KafkaTimeoutError,
    TimeoutError,
    OSError,
)
#: a record the broker will never take: retrying it would stall every snapshot behind it
_NEVER_ACCEPTED: tuple[type[BaseException], ...] = (MessageSizeTooLargeError, RecordTooLargeError)
#: a record batch's bytes at most (aiokafka's default is 16 KB: a 3,000-pair tick took ten
#: produce round trips one after the other, one in flight per broker)
MAX_BATCH_BYTES = 256 * 1024
#: malformed records logged at WARNING: the first, then one in this many
_MALFORMED_LOG_EVERY = 100


@dataclass(frozen=True, slots=True)
class KafkaOptions:
    """Where the bus's topic is and how it is made: the ``[kafka]`` values it uses (built
    from the settings by the daemon's wiring; the defaults are the settings' defaults)."""

    bootstrap: str = "127.0.0.1:9092"
    topic: str = "kms.book.snapshots"
    session_timeout_ms: int = 10_000
    #: snapshots held while the broker is unreachable (then dropped and counted)
    buffer_size: int = 10_000
    client_id: str = "krakenstream"
    #: partitions of the topic when the bus creates it (an existing topic is left as it is)
    partitions: int = 4
    #: replication factor of the topic when the bus creates it
    replication_factor: int = 1


@dataclass(slots=True)
class _Counters:
    """The bus's counters; its subscriptions add what they deliver, skip and fail at."""

    published: int = 0
    delivered: int = 0
    dropped: int = 0
    errors: int = 0
    malformed: int = 0


async def ensure_topic(options: KafkaOptions, *, within: float = 5.0) -> bool:
    """Create the topic if it is missing; answer whether it was created just now.

    An existing topic is left as it is (partitions are never changed: that would move pairs
    between partitions). A broker that refuses creation (ACLs, policy) is logged: the topic
    may be managed by its operators. Raises :class:`BackendUnavailable` when the broker
    cannot be reached.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=options.bootstrap,
        client_id=options.client_id,
        request_timeout_ms=int(within * 1000),
    )
    try:
        await asyncio.wait_for(admin.start(), within)
        topic = NewTopic(options.topic, options.partitions, options.replication_factor)
        response = await asyncio.wait_for(admin.create_topics([topic]), within)
    except (KafkaError, *_UNREACHABLE) as exc:
        raise BackendUnavailable(
            f"Kafka at {options.bootstrap} is unreachable: {exc!r}",
            hint="check kafka.bootstrap and that the broker is running",
        ) from exc
    finally:
        try:
            await admin.close()
        except Exception:  # closing a half-started client must not mask the cause
            log.debug("closing the Kafka admin client failed", exc_info=True)
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        if code == 0:
            log.info("created Kafka topic %s (%d partitions)", name, options.partitions)
            return True
        if code != TopicAlreadyExistsError.errno:
            log.warning("Kafka refused to create topic %s (error code %d): %s", name, code, entry)
    return False


class _Partitions:
    """Which partition a pair's records go to: Kafka's default partitioner (murmur2 of the
    key over the partitions sorted by id, what ``producer.send`` and the Java client pick),
    remembered per key until the topic's partitions change."""

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._by_key: dict[bytes, int] = {}
        self._choose = DefaultPartitioner()

    def of(self, partitions: set[int]) -> Callable[[bytes], int]:
        ids = sorted(partitions)
        if ids != self._ids:
            self._ids, self._by_key = ids, {}
        return self._lookup

    def _lookup(self, key: bytes) -> int:
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key[key] = self._choose(key, self._ids, self._ids)
        return found


class KafkaBus(StartsAndCloses):
    """Snapshots to a Kafka topic through a bounded, retrying buffer (at-least-once)."""

    def __init__(
        self,
        options: KafkaOptions,
        *,
        linger_ms: int = 5,
        #: snapshots handed to the producer at once: a whole tick of thousands of pairs
        batch_size: int = 5000,
        request_timeout: float = 5.0,
        close_timeout: float = 5.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        buffer_ticks: int = 10,
        rng: random.Random | None = None,
    ) -> None:
        if buffer_ticks < 1:
            raise ValueError("buffer_ticks must be at least 1")
        self.options = options
        self.buffer_ticks = buffer_ticks
        #: snapshots buffered + in flight at most (grows with :meth:`size_for_pairs`)
        self.buffer_limit = options.buffer_size
        #: drops since the buffer reached its bound (None: not overflowing)
        self._overflow: int | None = None
        kafka_log.install()
        #: this process's view of the broker (one pair of log lines per outage)
        self.link = kafka_log.link()
        self.link.where = options.bootstrap
        self._linger_ms = linger_ms
        self._batch_size = max(1, min(batch_size, options.buffer_size))
        self._request_timeout = request_timeout
        self._close_timeout = close_timeout
        self._backoff = (backoff_initial, backoff_max)
        #: the jitter of every reconnect delay, the bus's and its subscriptions'
        self._rng = rng or random.Random()
        #: snapshots encoded as they were published (the tick's turns on the event loop, while
        #: the last send waits for its acknowledgement), not yet handed to the producer
        self._buffer: deque[Encoded] = deque()
        #: snapshots handed to the producer and not yet acknowledged or failed
        self._inflight: list[Encoded] = []
        self._counters = _Counters()
        self._producer: AIOKafkaProducer | None = None
        self._partitions = _Partitions()
        self._idempotence = True
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._give_up = asyncio.Event()
        #: set while nothing is buffered or in flight (everything published is acknowledged)
        self._idle = asyncio.Event()
        self._idle.set()
        #: when the shutdown's budget (``close_timeout``, shared by flush and close) runs out
        self._deadline: float | None = None

    # -- SnapshotBus ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start the sender; returns at once, connecting (and creating the topic) in the
        background, so a broker that is down at startup does not stop the daemon."""
        if self._task is None:
            self._closing = False
            self._deadline = None
            self._give_up = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="kms-kafka-bus-sender")

    async def flush(self) -> None:
        """Wait until every snapshot published so far is acknowledged, for at most
        ``close_timeout`` s; what is still held then waits for ``close()``, which has what is
        left of the same ``close_timeout`` (a broker that is down is waited for once)."""
        task = self._task
        if task is None or task.done():
            return
        if not self._idle.is_set():
            try:
                await asyncio.wait_for(self._idle.wait(), self._budget_left())
            except TimeoutError:
                log.warning("Kafka bus flush: %d snapshots not acknowledged within %.1f s",
                            len(self._buffer) + len(self._inflight), self._close_timeout)

    async def close(self) -> None:
        """Flush the buffer for up to ``close_timeout`` s (less what :meth:`flush` used, plus
        one request timeout for a batch in flight); whatever is still not acknowledged is
        counted as dropped."""
        self._closing = True
        self._wake.set()
        remaining = self._budget_left()
        self._deadline = None
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=remaining)
            if not done:
                self._give_up.set()
                done, _ = await asyncio.wait({task}, timeout=self._request_timeout + 2.0)
            if not done:
                task.cancel()
                await asyncio.wait({task})
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("Kafka sender stopped on a bug", exc_info=task.exception())
        lost = len(self._buffer) + len(self._inflight)
        if lost:
            self._counters.dropped += lost
            log.warning("Kafka bus closed with %d snapshots not acknowledged: dropped", lost)
        self._buffer.clear()
        self._inflight = []
        await self._drop_producer()

    async def publish(self, snap: Snapshot) -> None:
        """Queue one snapshot for the sender; when the buffer is full, drop the oldest."""
        if self._closing:
            self._counters.dropped += 1
            log.debug("bus closing: dropped %s ts=%d", snap.pair, snap.ts)
            return
        self._buffer.append(Encoded.of(snap))
        self._idle.clear()
        self._trim()
        self._wake.set()

    def size_for_pairs(self, pairs: int) -> None:
        """A publisher publishes ``pairs`` snapshots a tick: hold ``buffer_ticks`` ticks of
        them (never less than ``kafka.buffer_size``; only grows)."""
        self.buffer_limit = max(self.buffer_limit, pairs * self.buffer_ticks)

    def subscribe(self, group: str | None) -> KafkaSubscription:
        if group is not None and not group:
            raise ValueError("a group name must not be empty (use None for a tap)")
        return KafkaSubscription(self.options, group, self._counters, backoff=self._backoff,
                                 rng=self._rng, link=self.link)

    def stats(self) -> BusStats:
        c = self._counters
        return BusStats(
            published=c.published,
            delivered=c.delivered,
            dropped=c.dropped,
            buffered=len(self._buffer) + len(self._inflight),
            errors=c.errors,
            malformed=c.malformed,
            losing=self._overflow is not None,
            client_errors=self.link.errors_total,
        )

    async def healthy(self) -> bool:
        """Whether the broker answers a metadata request now (within 2 s)."""
        producer = self._producer
        if producer is None:
            return False
        try:
            await asyncio.wait_for(producer.client.fetch_all_metadata(), 2.0)
        except (KafkaError, *_UNREACHABLE):
            return False
        self.link.worked()
        return True

    @property
    def idempotent(self) -> bool:
        """False once the broker refused an idempotent producer and we fell back."""
        return self._idempotence

    # -- the sender ----------------------------------------------------------------------

    def _budget_left(self) -> float:
        """Seconds left of the shutdown's ``close_timeout``, started by the first call."""
        now = asyncio.get_running_loop().time()
        if self._deadline is None:
            self._deadline = now + self._close_timeout
        return max(0.0, self._deadline - now)

    def _trim(self) -> None:
        """Keep buffered + in flight within ``buffer_limit`` by dropping the oldest queued."""
        excess = min(len(self._buffer) + len(self._inflight) - self.buffer_limit,
                     len(self._buffer))
        if excess <= 0:
            return
        for _ in range(excess):
            self._buffer.popleft()
        self._counters.dropped += excess
        if self._overflow is None:
            self._overflow = 0
            log.warning("Kafka bus buffer full (%d snapshots): dropping the oldest until the "
                        "broker catches up; history marks each hole gap_before",
                        self.buffer_limit)
        self._overflow += excess

    def _check_recovered(self) -> None:
        if self._overflow is not None and len(self._buffer) <= self.buffer_limit // 2:
            log.info("Kafka bus buffer caught up: %d snapshots were dropped while it was full",
                     self._overflow)
            self._overflow = None

    async def _run(self) -> None:
        """The sender, kept alive: a bug in one round is logged and the round retried."""
        while not self._give_up.is_set():
            try:
                await self._drain()
                return
            except Exception:
                log.exception("Kafka sender failed; restarting it")
                self._counters.errors += 1
                self._buffer.extendleft(reversed(self._inflight))
                self._inflight = []
                self._trim()
                await self._drop_producer()
                await self._sleep(self._backoff[1])

    def _new_delays(self) -> Iterator[float]:
        """Reconnect delays from the start (:func:`krakenstream.core.backoff.backoff`)."""
        return backoff(*self._backoff, rng=self._rng)

    async def _drain(self) -> None:
        delays = self._new_delays()
        while not self._give_up.is_set():
            if self._producer is None:
                if self._closing and not self._buffer:
                    return
                try:
                    self._producer = await self._connect()
                except BackendUnavailable as exc:
                    self._counters.errors += 1
                    self._log_unreachable(exc)
                    await self._sleep(next(delays))
                    continue
                self.link.worked()
                delays = self._new_delays()
            if not self._buffer:
                self._idle.set()
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            n = min(self._batch_size, len(self._buffer))
            self._inflight = [self._buffer.popleft() for _ in range(n)]
            failed = await self._send(self._producer, self._inflight)
            self._inflight = []
            self._check_recovered()
            if failed:
                self._counters.errors += 1
                self._buffer.extendleft(reversed(failed))
                self._trim()
                await self._drop_producer()
                await self._sleep(next(delays))

    async def _send(self, producer: AIOKafkaProducer, batch: list[Encoded]) -> list[Encoded]:
        """Send a batch and wait for every acknowledgement; answer the ones to send again.

        The snapshots go in record batches built here, one per partition (more when one
        fills ``max_batch_size``), each with one future: ``producer.send`` per snapshot cost
        ~20 µs of the event loop's time (its future, the accumulator, the key's murmur2 in
        pure Python) against ~3 µs to append to a batch, and a tick of 3,000 pairs is sent
        at once. A pair's partition is the one ``send`` would pick (Kafka's default
        partitioner), remembered per pair."""
        topic = self.options.topic
        #: per record batch handed over: its partition and its snapshots' places in ``batch``
        handed: list[tuple[int, list[int], asyncio.Future[Any]]] = []
        try:
            partition_of = self._partitions.of(await producer.partitions_for(topic))
            building: dict[int, tuple[BatchBuilder, list[int]]] = {}
            for i, snap in enumerate(batch):
                key = snap.pair.encode()
                partition = partition_of(key)
                value = snap.data
                entry = building.get(partition)
                if entry is None or entry[0].append(key=key, value=value, timestamp=None) is None:
                    if entry is not None:  # full: hand it over, start the next one
                        future = await producer.send_batch(entry[0], topic, partition=partition)
                        handed.append((partition, entry[1], future))
                    entry = building[partition] = (producer.create_batch(), [])
                    # a batch takes its first record whatever its size
                    entry[0].append(key=key, value=value, timestamp=None)
                entry[1].append(i)
            for partition, (builder, places) in building.items():
                future = await producer.send_batch(builder, topic, partition=partition)
                handed.append((partition, places, future))
        except (KafkaError, *_UNREACHABLE) as exc:
            sent = sum(len(places) for _, places, _ in handed)
            self.link.failed(f"send failed after {sent} of {len(batch)}: {exc!r}")
        results = await asyncio.gather(*(f for _, _, f in handed), return_exceptions=True)
        done = [False] * len(batch)
        refused: list[int] = []
        first: BaseException | None = None
        for (_, places, _), result in zip(handed, results, strict=True):
            if not isinstance(result, BaseException):
                self._counters.published += len(places)
            elif isinstance(result, _NEVER_ACCEPTED) and len(places) > 1:
                refused += places  # which one is too large: each is sent alone below
                continue
            elif isinstance(result, _NEVER_ACCEPTED):
                self._counters.dropped += 1
                snap = batch[places[0]]
                log.error("Kafka refused %s ts=%d for good: %r", snap.pair, snap.ts, result)
            else:
                first = first or result
                continue
            for i in places:
                done[i] = True
        if refused:
            alone = [batch[i] for i in sorted(refused)]
            again = {id(s) for s in await self._send_alone(producer, alone)}
            for i in refused:
                done[i] = id(batch[i]) not in again
        # what was not acknowledged (never handed over included) keeps its order
        retry = [snap for snap, ok in zip(batch, done, strict=True) if not ok]
        if first is not None:
            self.link.failed(f"{len(retry)} snapshots not acknowledged ({first!r})")
        if len(retry) < len(batch):
            self.link.worked()
        return retry

    async def _send_alone(self, producer: AIOKafkaProducer,
                          batch: list[Encoded]) -> list[Encoded]:
        """Send each snapshot in a record batch of its own (after a batch was refused as too
        large: only the snapshot too large is dropped); answer the ones to send again."""
        topic = self.options.topic
        futures: list[asyncio.Future[Any]] = []
        try:
            for snap in batch:
                futures.append(await producer.send(topic, snap.data, key=snap.pair.encode()))
        except (KafkaError, *_UNREACHABLE) as exc:
            self.link.failed(f"send failed after {len(futures)} of {len(batch)}: {exc!r}")
        results = await asyncio.gather(*futures, return_exceptions=True)
        retry: list[Encoded] = []
        for snap, result in zip(batch, results, strict=False):
            if not isinstance(result, BaseException):
                self._counters.published += 1
            elif isinstance(result, _NEVER_ACCEPTED):
                self._counters.dropped += 1
                log.error("Kafka refused %s ts=%d for good: %r", snap.pair, snap.ts, result)
            else:
                retry.append(snap)
        return retry + batch[len(futures) :]

    async def _connect(self) -> AIOKafkaProducer:
        await ensure_topic(self.options, within=self._request_timeout)
        while True:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.options.bootstrap,
                client_id=self.options.client_id,
                acks="all",
                enable_idempotence=self._idempotence,
                linger_ms=self._linger_ms,
                # a partition's share of a 3,000-pair tick (~130 KB) in one record batch,
                # well under a broker's default message.max.bytes (1 MB)
                max_batch_size=MAX_BATCH_BYTES,
                request_timeout_ms=int(self._request_timeout * 1000),
            )
            try:
                await start_producer(producer, self._request_timeout,
                                     idempotent=self._idempotence)
            except (KafkaError, *_UNREACHABLE) as exc:
                await _stop_quietly(producer, self._request_timeout)
                if self._idempotence and not isinstance(exc, _UNREACHABLE):
                    # e.g. UnsupportedVersion (broker < 0.11), ClusterAuthorizationFailed
                    # (no IDEMPOTENT_WRITE): acks=all without idempotence is still safe, the
                    # store dedupes what a retry may duplicate
                    self._idempotence = False
                    log.warning(
                        "Kafka at %s refused an idempotent producer (%r): "
                        "continuing with acks=all without idempotence",
                        self.options.bootstrap,
                        exc,
                    )
                    continue
                raise BackendUnavailable(
                    f"Kafka at {self.options.bootstrap}: producer did not start: {exc!r}"
                ) from exc
            return producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _stop_quietly(producer, self._request_timeout + 1.0)

    async def _sleep(self, delay: float) -> None:
        """A backoff pause that ``close()`` can cut short."""
        try:
            await asyncio.wait_for(self._give_up.wait(), delay)
        except TimeoutError:
            pass

    def _log_unreachable(self, exc: BaseException) -> None:
        self.link.failed(f"{exc} (holding up to {self.buffer_limit} snapshots)")


async def _stop_quietly(client: AIOKafkaProducer | AIOKafkaConsumer, grace: float) -> None:
    try:
        await asyncio.wait_for(client.stop(), grace)
    except asyncio.CancelledError:
        # aiokafka's stop() can let the cancellation of its own fetch task escape (seen when
        # the broker is gone); only a cancellation of *this* task may propagate
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.debug("stopping a Kafka client leaked a cancellation", exc_info=True)
    except Exception:  # a client that fails to stop is abandoned, not fatal
        log.debug("stopping a Kafka client failed", exc_info=True)


class KafkaSubscription(StartsAndCloses):
    """A Kafka consumer: a member of ``group`` (offsets committed by ``commit()``) or, for
    ``group=None``, a tap with no group that starts at the end of every partition."""

    def __init__(
        self,
        options: KafkaOptions,
        group: str | None,
        counters: _Counters,
        *,
        backoff: tuple[float, float] = (0.2, 5.0),
        start_timeout: float | None = None,
        rng: random.Random | None = None,
        link: kafka_log.KafkaLink | None = None,
    ) -> None:
        self.options = options
        self.link = link or kafka_log.link()
        self._group = group
        self._counters = counters
        self._backoff_limits = backoff
        self._rng = rng or random.Random()
        self._delays = self._new_delays()
        #: a group join can wait a whole session timeout for the other members to rejoin
        self._start_timeout = start_timeout or max(10.0, 2 * options.session_timeout_ms / 1000)
        #: a commit answers within a session timeout, or the consumer is made anew
        self._commit_timeout = max(1.0, options.session_timeout_ms / 1000)
        self._consumer: AIOKafkaConsumer | None = None
        #: a (re)connection in progress, awaited by start() and, in slices, by get_batch()
        self._connecting: asyncio.Task[AIOKafkaConsumer] | None = None
        self._started = False
        self._retry_at = 0.0
        #: next offset per partition of what get_batch returned and commit() has not stored
        self._positions: dict[TopicPartition, int] = {}
        self._delivered = 0
        self._malformed = 0

    @property
    def group(self) -> str | None:
        return self._group

    async def start(self) -> None:
        """Join the group (or pin the tap to the current end); a broker that is down is
        logged and retried from :meth:`get_batch`, it does not raise."""
        if self._started:
            return
        self._started = True
        await self._ensure_consumer(self._start_timeout)

    async def close(self) -> None:
        """Leave the group (its partitions go to the other members at once)."""
        self._started = False
        await self._drop_consumer()

    async def get_batch(
        self,
        max_items: int = 500,
        timeout: float = 1.0,  # noqa: ASYNC109 - the bus interface's wait, in seconds
    ) -> list[Snapshot]:
        return await self._take(self._decode, max_items, timeout)

    async def get_encoded(
        self,
        max_items: int = 500,
        timeout: float = 1.0,  # noqa: ASYNC109 - the bus interface's wait, in seconds
    ) -> list[Encoded]:
        """As :meth:`get_batch`, each snapshot as the record carried it (checked, not turned
        into a :class:`Snapshot`): for readers that store the bytes or need few snapshots."""
        return await self._take(self._read, max_items, timeout)

    async def _take(self, read: Callable[[bytes | None, bytes | None, TopicPartition, int],
                                         _T | None],
                    max_items: int, wait: float) -> list[_T]:
        """Up to ``max_items`` fetched records as ``read`` gives them (``None``: malformed,
        counted and skipped by ``read``), counted as delivered."""
        out: list[_T] = []
        for tp, message in await self._fetch(max_items, wait):
            item = read(message.value, message.key, tp, message.offset)
            if item is not None:
                out.append(item)
        self._delivered += len(out)
        self._counters.delivered += len(out)
        return out

    async def _fetch(self, max_items: int, wait: float) -> list[tuple[TopicPartition, Any]]:
        """Up to ``max_items`` records (their positions noted for :meth:`commit`), waiting at
        most ``wait`` s; a fetch that fails drops the consumer, to reconnect later."""
        if not self._started:
            raise RuntimeError("get_batch() on a subscription that is not started")
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, wait)
        consumer = await self._ensure_consumer(max(0.0, wait))
        if consumer is None:
            return []
        remaining_ms = max(0, int((deadline - loop.time()) * 1000))
        try:
            records = await consumer.getmany(timeout_ms=remaining_ms, max_records=max_items)
        except KafkaError as exc:
            self._counters.errors += 1
            self.link.failed(f"fetch failed ({exc!r}): reconnecting")
            await self._drop_consumer()
            self._retry_at = loop.time() + next(self._delays)
            return []
        if records:
            self.link.worked()
        out: list[tuple[TopicPartition, Any]] = []
        for tp, messages in records.items():
            if messages:
                self._positions[tp] = messages[-1].offset + 1
            out += [(tp, message) for message in messages]
        return out

    async def commit(self) -> None:
        consumer = self._consumer
        if self._group is None or consumer is None or not self._positions:
            return
        assigned = consumer.assignment()
        offsets = {tp: off for tp, off in self._positions.items() if tp in assigned}
        # partitions taken away by a rebalance: their new owner re-reads from the last commit
        self._positions = dict(offsets)
        if not offsets:
            return
        try:
            # bounded: after a broker restart aiokafka's commit waited 300 s for a coordinator,
            # and the history writer, which commits after every write, stored nothing meanwhile
            await asyncio.wait_for(consumer.commit(offsets), self._commit_timeout)
        except (KafkaError, TimeoutError) as exc:
            self._counters.errors += 1
            self.link.trouble("commit", f"commit failed ({exc!r}): those records may be "
                              "delivered again")
            if isinstance(exc, TimeoutError):  # a consumer stuck on its coordinator: anew
                await self._drop_consumer()
                self._retry_at = asyncio.get_running_loop().time() + next(self._delays)
            return
        self.link.worked()
        for tp, off in offsets.items():
            if self._positions.get(tp) == off:
                del self._positions[tp]

    def stats(self) -> SubscriptionStats:
        return SubscriptionStats(delivered=self._delivered, malformed=self._malformed)

    # -- internals -----------------------------------------------------------------------

    def _new_delays(self) -> Iterator[float]:
        return backoff(*self._backoff_limits, rng=self._rng)

    def _decode(self, value: bytes | None, key: bytes | None, tp: TopicPartition,
                offset: int) -> Snapshot | None:
        """The record's snapshot, after :meth:`_read`'s checks (a compact row that passes
        them always gives its snapshot)."""
        item = self._read(value, key, tp, offset)
        return None if item is None else item.snapshot()

    def _read(self, value: bytes | None, key: bytes | None, tp: TopicPartition,
              offset: int) -> Encoded | None:
        """The record checked (no value, a compact row without its pair, damage: counted,
        logged, None), without building the snapshot of a compact record."""
        try:
            if value is None:
                raise ValueError("record has no value")
            if value[:1] == codec.MAGIC and not key:
                raise ValueError("compact record without its key (the pair)")
            return Encoded.read(key.decode("utf-8", "replace") if key else "", value)
        except ValueError as exc:
            self._skipped(exc, tp, offset)
            return None

    def _skipped(self, exc: ValueError, tp: TopicPartition, offset: int) -> None:
        """A malformed record: counted, logged (the first, then one in a hundred)."""
        self._malformed += 1
        self._counters.malformed += 1
        level = logging.WARNING
        if self._malformed % _MALFORMED_LOG_EVERY != 1:
            level = logging.DEBUG
        log.log(
            level,
            "skipped malformed record %s[%d]@%d (%d so far): %s",
            tp.topic,
            tp.partition,
            offset,
            self._malformed,
            exc,
        )

    async def _drop_consumer(self) -> None:
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            connecting.cancel()
            await asyncio.wait({connecting})
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await _stop_quietly(consumer, self._start_timeout)

    async def _ensure_consumer(self, wait: float) -> AIOKafkaConsumer | None:
        """The consumer, (re)connecting in the background with backoff; waits at most
        ``wait`` s for a connection in progress, so ``get_batch`` keeps its timeout."""
        if self._consumer is not None:
            return self._consumer
        loop = asyncio.get_running_loop()
        if self._connecting is None:
            pause = self._retry_at - loop.time()
            if pause > 0:
                await asyncio.sleep(min(pause, wait))
                return None
            self._connecting = asyncio.create_task(
                self._connect(), name=f"kms-kafka-connect-{self._group}"
            )
        done, _ = await asyncio.wait({self._connecting}, timeout=wait)
        if not done:
            return None
        task, self._connecting = self._connecting, None
        try:
            self._consumer = task.result()
        except BackendUnavailable as exc:
            self._counters.errors += 1
            self.link.failed(f"subscription (group {self._group}) not connected: {exc}")
            self._retry_at = loop.time() + next(self._delays)
            return None
        self._delays = self._new_delays()
        self.link.worked()
        return self._consumer

    async def _connect(self) -> AIOKafkaConsumer:
        s = self.options
        await ensure_topic(s, within=self._start_timeout)
        consumer = AIOKafkaConsumer(
            s.topic,
            bootstrap_servers=s.bootstrap,
            client_id=s.client_id,
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if self._group is not None else "latest",
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(100, s.session_timeout_ms // 3),
            # a quiet topic (one snapshot per pair per second) would otherwise hold each
            # fetch for the 500 ms default before answering
            fetch_max_wait_ms=50,
        )
        try:
            await asyncio.wait_for(consumer.start(), self._start_timeout)
            if self._group is None:
                await asyncio.wait_for(self._pin_to_end(consumer), self._start_timeout)
        except (KafkaError, *_UNREACHABLE) as exc:
            await _stop_quietly(consumer, self._start_timeout)
            raise BackendUnavailable(
                f"Kafka at {s.bootstrap}: consumer did not start: {exc!r}"
            ) from exc
        except asyncio.CancelledError:
            await _stop_quietly(consumer, self._start_timeout)
            raise
        return consumer

    @staticmethod
    async def _pin_to_end(consumer: AIOKafkaConsumer) -> None:
        """Resolve a tap's position now: "latest" is otherwise looked up lazily, at the first
        fetch, and what is published in between would be missed."""
        # without a group, start() has already assigned every partition of the topic
        partitions = sorted(consumer.assignment())
        if not partitions:
            return
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
