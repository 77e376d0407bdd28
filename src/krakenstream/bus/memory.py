"""The in-process snapshot bus (embedded default): fan-out to bounded queues, pure asyncio.

Each tap owns one queue; the members of a group share one queue, so a group gets each
snapshot once, as it would from Kafka. A group's queue lives as long as the bus, whether or not
a member is attached, like a Kafka group's committed offsets: a member that joins later
resumes where the group left off. Snapshots a member took but did not ``commit()`` go back to
the front of its group's queue when it closes, so the next member gets them again
(at-least-once, as with Kafka).

When a queue is full the oldest snapshot in it is dropped and counted (per subscription and
for the bus): a slow reader loses old seconds, never blocks the publisher, and never makes
the process grow. Everything runs on one event loop; ``publish`` must be called from it.
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

    __slots__ = ("group", "items", "limit", "dropped", "changed")

    def __init__(self, group: str | None, limit: int) -> None:
        self.group = group
        self.items: deque[Snapshot] = deque()
        self.limit = limit
        self.dropped = 0
        #: set whenever items arrive, so readers waiting on an empty queue wake up
        self.changed = asyncio.Event()

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
        for _ in range(excess):
            self.items.popleft()
        if excess > 0:
            self.dropped += excess
            return excess
        return 0


class MemoryBus(StartsAndCloses):
    """In-process fan-out; see the module docstring for the queue policy."""

    def __init__(self, queue_size: int = 1_000) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.queue_size = queue_size
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
        )

    async def healthy(self) -> bool:
        return True

    # -- used by MemorySubscription ------------------------------------------------------

    def _queues(self) -> list[_Queue]:
        return [*self._groups.values(), *self._taps]

    def _attach(self, group: str | None) -> _Queue:
        if group is None:
            queue = _Queue(None, self.queue_size)
            self._taps.add(queue)
            return queue
        shared = self._groups.get(group)
        if shared is None:
            shared = self._groups[group] = _Queue(group, self.queue_size)
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
        self._uncommitted: deque[Snapshot] = deque(maxlen=bus.queue_size)
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
        if self._group is not None:
            self._uncommitted.extend(batch)
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
