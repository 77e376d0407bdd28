"""The snapshot bus interface: what the orderbook role publishes into and the others read from.

Two implementations (``memory``: in-process fan-out; ``kafka``: a Kafka topic) pass one
contract suite, so a role never knows which one it talks to. The rules both keep:

- ``publish`` never blocks for long and never raises because a broker is down: what cannot
  be delivered now waits in a bounded buffer; when that is full the *oldest* is dropped and
  counted (a snapshot history favours the newest second). The buffer on the path to history
  is sized from the number of pairs the publisher announces (``size_for_pairs``): it holds
  whole ticks, so a burst of one snapshot per pair never loses part of a tick.
- A *group* (``subscribe("name")``) gets each snapshot once, shared among its members, and
  resumes where its last ``commit()`` left off; a *tap* (``subscribe(None)``) gets everything
  published after it started and commits nothing (the gateway's live WebSocket push).
- Delivery is at-least-once: a record returned but not committed may come again (to the
  same group), so consumers must be idempotent (the history store dedupes on pair + ts).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from ..core.codec import Encoded
from ..core.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class BusStats:
    """Counters of one bus since it was created (monotonic except ``buffered``)."""

    #: snapshots accepted by the transport (memory: handed to the queues; Kafka: acknowledged
    #: by the broker)
    published: int = 0
    #: snapshots returned by ``get_batch`` to this bus's subscriptions
    delivered: int = 0
    #: snapshots discarded because a bounded buffer or queue was full (oldest first), or
    #: because they were still held when ``close()`` ran out of time
    dropped: int = 0
    #: snapshots held right now, not yet published (Kafka) or not yet read (memory)
    buffered: int = 0
    #: failed transport operations (connect, send, fetch, commit); retried, never raised
    errors: int = 0
    #: records on the wire that were not a valid snapshot (bad JSON, unknown schema): skipped
    malformed: int = 0
    #: snapshots are being dropped on their way to history right now: a group's queue (memory)
    #: or the producer's buffer (Kafka) is full and has not caught up yet
    losing: bool = False
    #: errors the transport's client library reported, counted instead of logged (Kafka)
    client_errors: int = 0


@dataclass(frozen=True, slots=True)
class SubscriptionStats:
    """Counters of one subscription."""

    delivered: int = 0
    #: snapshots this subscription's queue lost to a slow reader (memory backend only)
    dropped: int = 0
    malformed: int = 0
    #: snapshots waiting in this subscription's queue (memory backend only)
    buffered: int = 0


class StartsAndCloses:
    """``async with`` for the bus and subscription classes, which all start with
    ``start()`` and end with ``close()``: written once here instead of in each of them."""

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


@runtime_checkable
class BusSubscription(Protocol):
    """One reader of the bus: a member of a consumer group, or a live tap."""

    @property
    def group(self) -> str | None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def get_batch(
        self,
        max_items: int = 500,
        timeout: float = 1.0,  # noqa: ASYNC109 - the bus interface's wait, in seconds
    ) -> list[Snapshot]:
        """Up to ``max_items`` snapshots, waiting at most ``timeout`` s; ``[]`` on timeout.

        Malformed records are counted, logged and skipped, never raised.
        """
        ...

    async def commit(self) -> None:
        """Everything returned so far is safely stored: do not deliver it to the group again.

        A no-op for a tap. A commit that fails (broker down, rebalance) is logged and counted;
        the records may then be delivered again, which at-least-once allows.
        """
        ...

    def stats(self) -> SubscriptionStats: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class EncodedSubscription(BusSubscription, Protocol):
    """A subscription that can also hand out snapshots in their stored form (Kafka, whose
    records carry exactly that): a reader that only passes them on, or needs few of them,
    skips building a :class:`Snapshot` of every one."""

    async def get_encoded(
        self,
        max_items: int = 500,
        timeout: float = 1.0,  # noqa: ASYNC109 - the bus interface's wait, in seconds
    ) -> list[Encoded]:
        """As :meth:`BusSubscription.get_batch` (the same records, positions and commits,
        malformed ones skipped and counted alike), each an :class:`Encoded`."""
        ...


@runtime_checkable
class SnapshotBus(Protocol):
    """Carries snapshots from the orderbook role to the analysis role and the gateway."""

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Deliver or flush what is still held (bounded time), then release everything."""
        ...

    async def flush(self) -> None:
        """Wait (bounded time) until what was published so far has reached the transport:
        Kafka: acknowledged by the broker; memory: at once (publishing already queued it).

        The daemon's shutdown calls it between stopping the publisher and draining the
        readers, so that they can still read what the bus was holding. What cannot be
        flushed in time stays held, for ``close()`` to try once more within what is left of
        the same time budget.
        """
        ...

    async def publish(self, snap: Snapshot) -> None:
        """Hand one snapshot to the bus; never blocks long, never raises on a down broker."""
        ...

    def size_for_pairs(self, pairs: int) -> None:
        """The publisher publishes ``pairs`` snapshots per tick: size the buffers on the path
        to history (group queues, the Kafka producer's buffer) to hold ``buffer_ticks`` whole
        ticks. Cheap and idempotent: the orderbook role calls it every tick."""
        ...

    def subscribe(self, group: str | None) -> BusSubscription:
        """A new, not yet started subscription: ``group=None`` is a live tap."""
        ...

    def stats(self) -> BusStats: ...

    async def healthy(self) -> bool:
        """Whether the transport is reachable right now (memory: always True)."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
