"""The in-process snapshot bus (embedded default): fan-out to bounded queues, pure asyncio.

Each tap owns one queue; the members of a group share one queue, so a group gets each
snapshot once, as it would from Kafka. A group's queue lives as long as the bus, whether or not
a member is attached, like a Kafka group's committed offsets: a member that joins later
resumes where the group left off. Snapshots a member took but did not ``commit()`` go back to
the front of its group's queue when it closes, so the next member gets them again
(at-least-once, as with Kafka).

Queue sizes, and why a group is sized rather than made to push back. Every tracked pair
publishes on the same tick, synchronously, so a tick of N pairs lands as N snapshots at once:
a queue smaller than that loses part of every tick before its reader has had a turn (1,500
pairs into a 1,000 queue lost a third of history). The orderbook role tells the bus how many
pairs it publishes (:meth:`MemoryBus.size_for_pairs`) and each *group* queue (the path to
history) holds at least ``buffer_ticks`` whole ticks of them; the publisher never waits. We
chose sizing over backpressure because the publisher is also what feeds the live taps and the
tick clock: making it wait for a slow store would delay every viewer's snapshot and, past an
interval, skip ticks (a loss anyway, only moved upstream), while a queue of a few ticks rides
out a store stall of a few seconds at no cost. The bound stays hard (``buffer_ticks`` x pairs
snapshots, about 3 KB each in memory): beyond it the *oldest* is dropped and counted, the
first drop is logged at WARNING and the recovery (the queue back under half full) at INFO
with how many were lost. Nothing is marked at write time: each snapshot carries its
publisher's ``origin`` and per-pair ``seq``, and history readers mark the hole
``gap_before`` from the stored neighbours (:mod:`krakenstream.core.gaps`).

A *tap* (a live viewer: the gateway's WebSocket push and latest cache) holds two whole ticks
(at least ``queue_size``) and drops the oldest beyond that, silently but counted: a live view
wants the newest second, not every second of a reader that fell behind. Everything runs on
one event loop; ``publish`` must be called from it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable

from ..core.snapshot import Snapshot
from .base import BusStats, StartsAndCloses, SubscriptionStats

log = logging.getLogger(__name__)


class _Queue:
    """One bounded FIFO: a tap's own, or the one a group's members share."""

    __slots__ = ("group", "items", "limit", "dropped", "changed", "overflow")

    def __init__(self, group: str | None, limit: int) -> None:
        self.group = group
        self.items: deque[Snapshot] = deque()
        self.limit = limit
        self.dropped = 0
        #: set whenever items arrive, so readers waiting on an empty queue wake up
        self.changed = asyncio.Event()
        #: a group queue that reached its bound: drops since then (None: not overflowing)
        self.overflow: int | None = None

    def put(self, snap: Snapshot) -> int:
        """Append; drop the oldest beyond the limit and answer how many were dropped."""
        self.items.append(snap)
        self.changed.set()
        return self._trim()

    def put_back(self, snaps: Iterable[Snapshot]) -> int:
        """Return snapshots a member took but never committed to the front, in order."""
        self.items.extendleft(reversed(list(snaps)))
        self.changed.set()
        return self._trim()

    def _trim(self) -> int:
        excess = len(self.items) - self.limit
        if excess <= 0:
            return 0
        for _ in range(excess):
            self.items.popleft()
        self.dropped += excess
        if self.group is not None:
            if self.overflow is None:
                self.overflow = 0
                log.warning(
                    "bus group %s is full (%d snapshots): dropping the oldest until it catches "
                    "up; history marks each hole gap_before", self.group, self.limit)
            self.overflow += excess
        return excess

    def taken(self) -> None:
        """After a read: log the recovery of a group queue that overflowed."""
        if self.overflow is not None and len(self.items) <= self.limit // 2:
            log.info("bus group %s caught up: %d snapshots were dropped while it was full",
                     self.group, self.overflow)
            self.overflow = None


class MemoryBus(StartsAndCloses):
    """In-process fan-out; see the module docstring for the queue policy."""

    def __init__(self, queue_size: int = 1_000, *, buffer_ticks: int = 10) -> None:
        if queue_size < 1 or buffer_ticks < 1:
            raise ValueError("queue_size and buffer_ticks must be at least 1")
        #: the least any queue holds (a tap's bound until pairs are known)
        self.queue_size = queue_size
        self.buffer_ticks = buffer_ticks
        #: the largest pair count a publisher announced (:meth:`size_for_pairs`)
        self.pairs = 0
        self._groups: dict[str, _Queue] = {}
        self._taps: set[_Queue] = set()
        self._closed = False
        self._published = 0
        self._delivered = 0
        self._dropped = 0

    @property
    def closed(self) -> bool:
        return self._closed

    async def start(self) -> None:
        """Nothing to connect to; here so the bus is used like every other backend."""

    async def close(self) -> None:
        """Stop accepting snapshots; readers still get what their queues hold, then ``[]``."""
        self._closed = True
        for queue in self._queues():
            queue.changed.set()

    async def flush(self) -> None:
        """Nothing to wait for: ``publish`` hands each snapshot to the queues at once."""

    async def publish(self, snap: Snapshot) -> None:
        if self._closed:
            # roles stop in any order at shutdown: a late snapshot is counted, not an error
            self._dropped += 1
            log.debug("bus closed: dropped %s ts=%d", snap.pair, snap.ts)
            return
        self._published += 1
        for queue in self._queues():
            self._dropped += queue.put(snap)

    def size_for_pairs(self, pairs: int) -> None:
        """A publisher publishes ``pairs`` snapshots a tick: group queues now hold at least
        ``buffer_ticks`` ticks of them, taps two. Only grows (the bound is the largest pair
        count seen), so untracking pairs never trims what a slow store still has to take."""
        if pairs <= self.pairs:
            return
        self.pairs = pairs
        for queue in self._queues():
            queue.limit = self._limit(queue.group)

    def _limit(self, group: str | None) -> int:
        ticks = 2 if group is None else self.buffer_ticks
        return max(self.queue_size, self.pairs * ticks)

    def subscribe(self, group: str | None) -> MemorySubscription:
        if group is not None and not group:
            raise ValueError("a group name must not be empty (use None for a tap)")
        return MemorySubscription(self, group)

    def stats(self) -> BusStats:
        return BusStats(
            published=self._published,
            delivered=self._delivered,
            dropped=self._dropped,
            buffered=sum(len(q.items) for q in self._queues()),
            losing=any(q.overflow is not None for q in self._groups.values()),
        )

    async def healthy(self) -> bool:
        return True

    # -- used by MemorySubscription ------------------------------------------------------

    def _queues(self) -> list[_Queue]:
        return [*self._groups.values(), *self._taps]

    def _attach(self, group: str | None) -> _Queue:
        if group is None:
            queue = _Queue(None, self._limit(None))
            self._taps.add(queue)
            return queue
        shared = self._groups.get(group)
        if shared is None:
            shared = self._groups[group] = _Queue(group, self._limit(group))
        return shared

    def _detach(self, queue: _Queue, uncommitted: Iterable[Snapshot]) -> None:
        if queue.group is None:
            self._taps.discard(queue)
        else:
            self._dropped += queue.put_back(uncommitted)

    def _count_delivered(self, n: int) -> None:
        self._delivered += n


class MemorySubscription(StartsAndCloses):
    """A reader of a :class:`MemoryBus`: a tap (``group=None``) or a member of a group."""

    def __init__(self, bus: MemoryBus, group: str | None) -> None:
        self._bus = bus
        self._group = group
        self._queue: _Queue | None = None
        #: taken since the last commit; handed back to the group if we close without one
        #: (kept within the queue's bound: more could not go back anyway)
        self._uncommitted: deque[Snapshot] = deque()
        self._delivered = 0
        #: the shared queue's drop count when we joined, and ours once we have left it
        self._dropped_before = 0
        self._dropped_after_close = 0

    @property
    def group(self) -> str | None:
        return self._group

    async def start(self) -> None:
        if self._queue is None:
            self._queue = self._bus._attach(self._group)
            self._dropped_before = self._queue.dropped

    async def close(self) -> None:
        if self._queue is not None:
            self._dropped_after_close = self._queue.dropped - self._dropped_before
            self._bus._detach(self._queue, self._uncommitted)
            self._uncommitted.clear()
            self._queue = None

    async def get_batch(
        self,
        max_items: int = 500,
        timeout: float = 1.0,  # noqa: ASYNC109 - the bus interface's wait, in seconds
    ) -> list[Snapshot]:
        queue = self._queue
        if queue is None:
            raise RuntimeError("get_batch() on a subscription that is not started")
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        if not queue.items and not self._bus.closed:
            try:
                async with asyncio.timeout(max(0.0, timeout)):
                    while not queue.items and not self._bus.closed:
                        queue.changed.clear()
                        await queue.changed.wait()
            except TimeoutError:
                return []
        n = min(max_items, len(queue.items))
        batch = [queue.items.popleft() for _ in range(n)]
        queue.taken()
        if self._group is not None:
            self._uncommitted.extend(batch)
            for _ in range(len(self._uncommitted) - queue.limit):
                self._uncommitted.popleft()
        self._delivered += n
        self._bus._count_delivered(n)
        return batch

    async def commit(self) -> None:
        self._uncommitted.clear()

    def stats(self) -> SubscriptionStats:
        queue = self._queue
        return SubscriptionStats(
            delivered=self._delivered,
            dropped=(
                self._dropped_after_close if queue is None else queue.dropped - self._dropped_before
            ),
            buffered=0 if queue is None else len(queue.items),
        )
