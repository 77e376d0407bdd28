"""The gateway's live side: one bus tap feeding WebSocket clients and the latest-snapshot cache.

One background task reads a tap of the bus (``bus.subscribe(None)``) and, for each snapshot,
remembers it as its pair's latest (the order book route answers from it when the orderbook
role runs in another process) and hands it, encoded once, to every WebSocket client of that
pair. Feed state changes reach the same clients when the orderbook role is in this process.

From a bus that hands out snapshots as its records carried them (Kafka), the tap builds a
:class:`~krakenstream.core.snapshot.Snapshot` only of the pairs someone streams, and of a
pair's latest when something reads it (:class:`LatestSeen`): it reads every snapshot of every
pair, 3,000 a second at 3,000 pairs, and decoding each cost ~20 µs of the event loop that the
history writer shares.

Memory is bounded per client: each has a queue of at most ``backlog`` messages (one encoded
message is shared by every client of its pair, so a queue holds references, not copies). A
client that lets its queue fill (its socket is not draining) is cut off with close code 1013
and counted, never buffered further; the others are not held back by it. At shutdown every
client is told 1001 (going away).

And the clients are bounded in number: at most ``max_clients`` at once, ``max_per_user`` per
account (:meth:`StreamHub.refusal` says why one more is refused; the route closes it with
4429). Each stream costs a socket, three tasks and uvicorn's protocol objects, about 40 KB,
and every snapshot is offered to each: 5,000 unbounded streams took 200 MB and made a
normal reader's delay go from 20 ms to 739 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

import orjson

from ...bus.base import BusSubscription, EncodedSubscription, SnapshotBus
from ...core.codec import Encoded
from ...core.snapshot import Snapshot
from ...feed.status import FeedEvent
from ...tasks import died
from ...wire import GOING_AWAY, TOO_SLOW
from ..metrics import Metrics

log = logging.getLogger(__name__)

#: snapshots taken from the tap per read, and how long one read waits (bounds stop latency)
TAP_BATCH = 500
TAP_WAIT = 0.5


class StreamClient:
    """One WebSocket client's bounded outbox; the route's send loop drains it."""

    __slots__ = ("pair", "backlog", "user", "items", "wake", "closed", "close_code",
                 "close_reason")

    def __init__(self, pair: str, backlog: int, user: int | None = None) -> None:
        self.pair = pair
        self.backlog = backlog
        #: the account it streams for (its streams are counted per account)
        self.user = user
        self.items: deque[str] = deque()
        self.wake = asyncio.Event()
        #: set once the client is to be closed (a send in progress is then abandoned)
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""

    def offer(self, message: str) -> bool:
        """Queue a message; False (and the client is to be cut off) if its backlog is full."""
        if self.close_code is not None:
            return False
        if len(self.items) >= self.backlog:
            self.items.clear()
            self.close(TOO_SLOW, f"too slow: more than {self.backlog} messages behind")
            return False
        self.items.append(message)
        self.wake.set()
        return True

    def close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self.wake.set()
        self.closed.set()

    async def next(self) -> str | None:
        """The next message to send, or None when the client is to be closed."""
        while True:
            if self.close_code is not None:
                return None
            if self.items:
                return self.items.popleft()
            self.wake.clear()
            await self.wake.wait()


class LatestSeen(Mapping[str, Snapshot]):
    """pair → the newest snapshot the bus tap has seen: a mapping whose snapshots are built
    when read (then kept), the tap having noted them as the bus carried them."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[str, Snapshot | Encoded] = {}

    def note(self, item: Snapshot | Encoded) -> None:
        """``item`` is its pair's newest now."""
        self._seen[item.pair] = item

    def ts(self, pair: str) -> int | None:
        """The ts of the pair's newest, without building its snapshot."""
        item = self._seen.get(pair)
        return None if item is None else item.ts

    def __getitem__(self, pair: str) -> Snapshot:
        item = self._seen[pair]
        if isinstance(item, Encoded):
            item = self._seen[pair] = item.snapshot()
        return item

    def __contains__(self, pair: object) -> bool:
        return pair in self._seen

    def __iter__(self) -> Iterator[str]:
        return iter(self._seen)

    def __len__(self) -> int:
        return len(self._seen)


class StreamHub:
    """The bus tap, the per-pair latest snapshot, and the WebSocket clients by pair."""

    def __init__(self, bus: SnapshotBus, metrics: Metrics, *, backlog: int,
                 max_clients: int = 1_000, max_per_user: int = 50) -> None:
        self.bus = bus
        self.metrics = metrics
        self.backlog = backlog
        self.max_clients = max_clients
        self.max_per_user = max_per_user
        self._count = 0
        #: open streams per account (an account with none has no entry)
        self._per_user: dict[int, int] = {}
        #: streams refused for each limit since the start
        self.refused = {"total": 0, "user": 0}
        #: pair → the newest snapshot seen on the bus since the gateway started
        self.latest = LatestSeen()
        self._clients: dict[str, set[StreamClient]] = {}
        #: set while no client is connected (shutdown waits on it)
        self._empty = asyncio.Event()
        self._empty.set()
        self._sub: BusSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self.cut_off = 0

    def problems(self) -> list[str]:
        """The bus tap gone (no live stream, no live latest snapshot), for /health."""
        why = died(self._task)
        return [] if why is None else [f"gateway: the stream tap stopped ({why})"]

    @property
    def client_count(self) -> int:
        return self._count

    def refusal(self, user: int | None) -> str | None:
        """Why one more stream (of ``user``) is refused now, counted; None if it is not."""
        if self._count >= self.max_clients:
            self.refused["total"] += 1
            self.metrics.ws_refused.labels("total").inc()
            return (f"the gateway serves {self.max_clients} streams, its most "
                    "(gateway.max_ws_clients): try again later")
        if user is not None and self._per_user.get(user, 0) >= self.max_per_user:
            self.refused["user"] += 1
            self.metrics.ws_refused.labels("user").inc()
            return (f"this account has {self.max_per_user} streams open, the most one may "
                    "(gateway.max_ws_per_user)")
        return None

    async def start(self) -> None:
        self._sub = self.bus.subscribe(None)
        await self._sub.start()
        self._task = asyncio.create_task(self._run(self._sub), name="kms-gateway-tap")

    async def stop(self) -> None:
        """Stop the tap and tell every client the server is going away."""
        self.close_all(GOING_AWAY, "server shutting down")
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.close()
            except Exception:  # closing at shutdown: say so, do not stop the shutdown
                log.warning("gateway tap did not close cleanly", exc_info=True)

    def close_all(self, code: int, reason: str) -> None:
        for clients in self._clients.values():
            for client in clients:
                client.close(code, reason)

    async def drain(self, within: float) -> None:
        """Wait (at most ``within`` s) for every client to be gone."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._empty.wait()

    def add(self, pair: str, user: int | None = None) -> StreamClient:
        """A new client of ``pair`` (see :meth:`refusal` first: this does not refuse)."""
        client = StreamClient(pair, self.backlog, user)
        self._clients.setdefault(pair, set()).add(client)
        self._count += 1
        if user is not None:
            self._per_user[user] = self._per_user.get(user, 0) + 1
        self._empty.clear()
        self.metrics.ws_clients.inc()
        return client

    def remove(self, client: StreamClient) -> None:
        clients = self._clients.get(client.pair)
        if clients is None or client not in clients:
            return
        clients.discard(client)
        self._count -= 1
        user = client.user
        if user is not None:
            left = self._per_user[user] - 1
            if left:
                self._per_user[user] = left
            else:
                del self._per_user[user]
        if not clients:
            del self._clients[client.pair]
            if not self._clients:
                self._empty.set()
        self.metrics.ws_clients.dec()

    def publish(self, pair: str, message: str) -> None:
        """Offer one encoded message to every client of ``pair``; cut off the full ones."""
        clients = self._clients.get(pair)
        if not clients:
            return
        for client in list(clients):
            if not client.offer(message) and client.close_code == TOO_SLOW:
                self.cut_off += 1
                self.metrics.ws_cut_off.inc()
                log.warning("ws client cut off pair=%s backlog=%d", pair, self.backlog)
                self.remove(client)

    def on_feed_event(self, event: FeedEvent) -> None:
        """The orderbook role's state listener: a status message to the pair's clients."""
        if event.pair not in self._clients:
            return
        message = orjson.dumps({"type": "status", "pair": event.pair,
                                "state": event.new.value, "reason": event.reason})
        self.publish(event.pair, message.decode())

    async def _run(self, sub: BusSubscription) -> None:
        loop = asyncio.get_running_loop()
        get = sub.get_encoded if isinstance(sub, EncodedSubscription) else sub.get_batch
        while True:
            began = loop.time()
            try:
                batch: Sequence[Snapshot | Encoded] = await get(TAP_BATCH, TAP_WAIT)
            except asyncio.CancelledError:
                raise
            except Exception:  # the bus promises not to raise; if it does, keep tapping
                log.exception("gateway tap read failed")
                await asyncio.sleep(TAP_WAIT)
                continue
            if not batch and loop.time() - began < TAP_WAIT / 2:
                # a closed bus answers at once: wait here instead of spinning
                await asyncio.sleep(TAP_WAIT)
            note, clients = self.latest.note, self._clients
            for item in batch:
                note(item)
                if item.pair in clients:
                    snap = item if isinstance(item, Snapshot) else item.snapshot()
                    message = orjson.dumps({"type": "snapshot", "data": snap.to_dict()})
                    self.publish(snap.pair, message.decode())


async def send_until_closed(client: StreamClient, send: Callable[[str], Awaitable[None]]) -> None:
    """Send the client's messages until it is to be closed.

    A send waits while the client's socket is not draining (the server's flow control); if the
    client is cut off or the server shuts down meanwhile, that send is abandoned at once (it
    has written nothing yet) so the close can go out without waiting for a reader that may
    never come back.
    """
    while (message := await client.next()) is not None:
        sender = asyncio.ensure_future(send(message))
        if not sender.done():
            closer = asyncio.ensure_future(client.closed.wait())
            try:
                await asyncio.wait({sender, closer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closer.cancel()
            if not sender.done():
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
                return
        sender.result()  # a disconnect surfaces here


class LatestCache:
    """The store's newest snapshot per pair, encoded, kept for ``ttl`` seconds.

    ``latest`` is the hottest route and its answer changes once per snapshot interval, while
    a store read costs a thread hop and a decode (~0.2 ms, more than the rest of the request).
    An entry is dropped early as soon as the bus tap has seen a newer snapshot of the pair,
    so an answer is never older than what the store held ``ttl`` seconds ago. Concurrent
    misses of one pair share a single store read. Only pairs with data are kept (bounded by
    the pairs in the store).
    """

    def __init__(self, hub: StreamHub, ttl: float) -> None:
        self.hub = hub
        self.ttl = ttl
        self._entries: dict[str, tuple[float, int, bytes]] = {}
        self._inflight: dict[str, asyncio.Future[bytes | None]] = {}

    async def get(self, pair: str, read: Callable[[], Awaitable[Snapshot | None]]) -> bytes | None:
        """The pair's newest stored snapshot as JSON, or None if it has none."""
        entry = self._entries.get(pair)
        if entry is not None and entry[0] > time.monotonic():
            seen = self.hub.latest.ts(pair)
            if seen is None or seen <= entry[1]:
                return entry[2]
        fut = self._inflight.get(pair)
        if fut is None:
            fut = asyncio.ensure_future(self._fetch(pair, read))
            self._inflight[pair] = fut
            fut.add_done_callback(lambda f: self._done(pair, f))
        return await asyncio.shield(fut)

    async def _fetch(self, pair: str, read: Callable[[], Awaitable[Snapshot | None]]
                     ) -> bytes | None:
        snap = await read()
        if snap is None:
            self._entries.pop(pair, None)
            return None
        body = snap.to_json()
        self._entries[pair] = (time.monotonic() + self.ttl, snap.ts, body)
        return body

    def _done(self, pair: str, fut: asyncio.Future[bytes | None]) -> None:
        if self._inflight.get(pair) is fut:
            del self._inflight[pair]
        if not fut.cancelled():
            fut.exception()  # retrieved here too, so a failure no one awaited is not logged
