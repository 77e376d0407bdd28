"""Many pairs over several connections: a pool of :class:`FeedClient`, at most
``pairs_per_connection`` pairs each, tracking pairs by name and by pattern.

**Why several connections.** Each connection reconnects on its own, so a cut line resyncs
only its own pairs: the others stay ``live`` and keep their books. Kraken documents no cap
per connection; other clients put 20 to 200 pairs on one.

**The instrument channel is subscribed on every connection** (each client does it, as it
would alone). A book's precision must arrive in order with that book's frames — on another
connection a precision change would race the very frames it governs — and a connection that
reconnects gets its own fresh precisions without waiting for another. The cost is one
instrument list per connection when it connects (about 1 MB for all of Kraken). The
**listing** — which pairs exist and their status, what the patterns resolve against — is
read from one connection only, the first (the *lead*, which the pool keeps open even with no
pair on it): one source, so two connections that saw an update a moment apart never make a
pair flap in and out.

**Connection attempts** of every connection go through one :class:`ConnectBudget`
(``connect_limit`` attempts in any 10 minutes, ``connect_spacing`` apart): a pool opens its
connections one after the other, and connections cut together (a network blip) reconnect
one after the other, far under Kraken's ban at about 150 in 10 minutes.

**At most** ``max_pairs`` pairs are tracked: :meth:`would_track` lets a caller refuse a
request past it; pairs a pattern brings in later past it are left out (those already
tracked keep their place), logged when the count changes and counted in
:attr:`over_max_pairs`.

**Placement**: a new pair goes on the first connection with room, a new connection opens when
all are full, and a connection left without pairs (not the lead) is closed. Changes to the
pairs (what was asked for, what the listing says) are worked out by the pure
:class:`~krakenstream.feed.selection.Selection` and applied by the pool's own task.

The pool offers the same view as a lone client (``pairs``, ``status()``, ``book()``,
``connection_status()``, ``events()``, ``wait_live()``), plus ``connections()``, one status
per connection. A failure in one connection (a bug, a hook that raised) stops the pool, as it
stops a lone client: no pair is left claiming to be live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from types import TracebackType
from typing import Self

from ..core.book import OrderBook
from ..core.events import Event, Instrument
from ..errors import FeedError
from ..tasks import report_failure
from .budget import ConnectBudget
from .changes import OnStateChange, StateChanges
from .client import FeedClient, OnFrame
from .options import FeedOptions
from .selection import ListingChange, Selection
from .status import ConnectionStatus, FeedEvent, PairStatus

log = logging.getLogger(__name__)

#: changes to the pairs are logged one line per pair up to this many, then summed up
LOG_EACH = 20

OnPairsChanged = Callable[[list[str], list[str]], None]


class FeedPool:
    """Track pairs and patterns over as many connections as they need; reconnect forever.

    ``pairs`` are pairs (``ETH/USD``) or patterns (``*``, ``*/USD``, ``BTC/*``) in the
    exchange's spelling. ``owns`` filters what patterns bring in (a shard's rule).
    ``on_pairs_changed(added, removed)`` is called after the tracked pairs changed.
    """

    def __init__(
        self,
        options: FeedOptions,
        pairs: Iterable[str] = (),
        *,
        on_state_change: OnStateChange | None = None,
        on_pairs_changed: OnPairsChanged | None = None,
        on_frame: OnFrame | None = None,
        owns: Callable[[str], bool] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        event_queue_size: int = 1000,
    ) -> None:
        self.options = options
        self.url = options.url
        self.on_state_change = on_state_change
        self.on_pairs_changed = on_pairs_changed
        self._on_frame = on_frame
        self._clock = clock
        self._rng = rng or random.Random()
        self._selection = Selection(owns)
        for selector in pairs:
            self._selection.add(selector)
        self._budget = ConnectBudget(options.connect_limit, spacing=options.connect_spacing)
        self._clients: list[FeedClient] = []
        self._owner: dict[str, FeedClient] = {}
        self._serial = 0
        self._changes = StateChanges(event_queue_size)
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._failure: BaseException | None = None
        #: pairs the selection names past ``max_pairs``, left out
        self.over_max_pairs = 0
        self._retired: set[FeedClient] = set()
        self._watchers: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self._finished = False
        #: set while the clients may apply frames to the books (see held)
        self._applying = asyncio.Event()
        self._applying.set()
        self._lead = self._new_client()
        self._place(self._capped(self._selection.target()))

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No frame is applied to any book while this is held (frames are still read off
        the sockets and wait in their connection's queue): the publish tick reads every
        book as of one moment, and the loop's time goes to the tick's snapshots first."""
        self._applying.clear()
        try:
            yield
        finally:
            self._applying.set()

    # -- the view a lone client gives --------------------------------------------------

    @property
    def pairs(self) -> tuple[str, ...]:
        """The pairs tracked (including those in ``error``)."""
        return tuple(self._owner)

    @property
    def patterns(self) -> tuple[str, ...]:
        return tuple(self._selection.patterns)

    def status(self) -> dict[str, PairStatus]:
        """A copy of every tracked pair's status."""
        merged: dict[str, PairStatus] = {}
        for client in self._clients:
            merged.update(client.status())
        return {p: merged[p] for p in self._owner if p in merged}

    def book(self, pair: str) -> OrderBook | None:
        """The pair's book if it may be used now (see :meth:`FeedClient.book`)."""
        client = self._owner.get(pair)
        return None if client is None else client.book(pair)

    def placement(self) -> dict[str, str]:
        """Which connection (its ``name``) carries each pair."""
        return {p: c.name for p, c in self._owner.items()}

    def connections(self) -> list[ConnectionStatus]:
        """One status per connection, the lead first."""
        return [c.connection_status() for c in self._clients]

    def connection_status(self) -> ConnectionStatus:
        """The connections summed up, in the fields a lone client has: ``connected`` only
        if every connection is, counters added up, the exchange's status from the lead."""
        conns = self.connections()
        lead = conns[0]
        down = [c for c in conns if not c.connected]
        if not down:
            state = "connected"
        elif any(c.state == "stopped" for c in down):
            state = "stopped"
        else:
            state = "waiting" if any(c.state == "waiting" for c in down) else "connecting"
        since = [c.connected_since for c in conns if c.connected_since is not None]
        frames = [c.last_frame_time for c in conns if c.last_frame_time is not None]
        return ConnectionStatus(
            url=self.url, name="pool", state=state, connected=not down,
            reconnects=sum(c.reconnects for c in conns),
            connect_failures=sum(c.connect_failures for c in conns),
            system=lead.system,
            bad_frames=sum(c.bad_frames for c in conns),
            overflows=sum(c.overflows for c in conns),
            events_dropped=self._changes.dropped,
            last_frame_time=max(frames, default=None),
            connected_since=min(since, default=None),
            last_error=next((c.last_error for c in down if c.last_error), lead.last_error),
            retry_at=min((c.retry_at for c in down if c.retry_at is not None), default=None),
            rate_limited=sum(c.rate_limited for c in conns),
            pairs=len(self._owner),
        )

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The pool's own task once started (None before)."""
        return self._task

    def listing(self) -> dict[str, str]:
        """What the lead connection's instrument channel lists: pair → status."""
        return dict(self._selection.listing.status)

    async def events(self) -> AsyncIterator[FeedEvent]:
        """Every connection's pair state changes, until the pool stops (one reader)."""
        async for ev in self._changes:
            yield ev

    async def wait_live(self, pairs: Iterable[str] | None = None) -> None:
        """Wait until every given pair (default: every tracked pair not in ``error``, and
        the patterns resolved) is ``live``. Raises :class:`FeedError` as a client does."""
        wanted = None if pairs is None else list(pairs)
        while not self.all_live(wanted):
            if self._finished:
                raise FeedError("the feed stopped before the books were live")
            await self._changes.wait()

    def all_live(self, pairs: Iterable[str] | None = None) -> bool:
        """Whether every given pair (default: every pair not in ``error``, the patterns
        resolved) is ``live`` now; :class:`FeedError` if a pair named is in ``error``."""
        wanted = None if pairs is None else list(pairs)
        if wanted is None:
            if self._selection.patterns and not self._selection.listing.known:
                return False
            return all(c.all_live() for c in self._clients)
        groups: dict[FeedClient, list[str]] = {}
        for p in wanted:
            client = self._owner.get(p)
            if client is None:
                return False
            groups.setdefault(client, []).append(p)
        return all(c.all_live(ps) for c, ps in groups.items())

    # -- changing what is tracked --------------------------------------------------------

    def would_track(self, selector: str) -> int:
        """How many pairs would be tracked with ``selector`` added (before ``max_pairs``)."""
        return len(self._selection.with_selector(selector).target())

    async def track(self, selector: str) -> list[str]:
        """Track a pair or a pattern (exchange spelling); returns the pairs it added. A
        pattern also takes the pairs Kraken lists later. A pair in ``error`` is retried."""
        self._selection.add(selector)
        owner = self._owner.get(selector)
        if owner is not None:
            owner.add_pairs_nowait([selector])
        added, _ = await self._reconcile()
        return added

    async def untrack(self, selector: str) -> list[str]:
        """Stop tracking a pair or a pattern; returns the pairs it removed."""
        if not self._selection.remove(selector):
            return []
        _, removed = await self._reconcile()
        return removed

    async def untrack_all(self, selectors: Iterable[str]) -> list[str]:
        """Stop tracking several pairs or patterns in one change (one reconcile, one log
        summary); returns the pairs removed."""
        if not [s for s in list(selectors) if self._selection.remove(s)]:
            return []
        _, removed = await self._reconcile()
        return removed

    async def add_pairs(self, pairs: Iterable[str]) -> list[str]:
        """Track more pairs by name (as a lone client's ``add_pairs``)."""
        added: list[str] = []
        for p in pairs:
            added.extend(await self.track(p))
        return added

    async def remove_pairs(self, pairs: Iterable[str]) -> list[str]:
        removed: list[str] = []
        for p in pairs:
            removed.extend(await self.untrack(p))
        return removed

    async def _reconcile(self) -> tuple[list[str], list[str]]:
        """Make the connections carry what the selection says; returns (added, removed)."""
        async with self._lock:
            target = self._capped(self._selection.target())
            wanted = set(target)
            removed = [p for p in self._owner if p not in wanted]
            added = [p for p in target if p not in self._owner]
            self._unplace(removed)
            fresh = self._place(added)
            if self._running:
                for client in fresh:
                    await self._launch(client)
                await self._retire_empty()
        if added or removed:
            self._log_changes(added, removed)
            if self.on_pairs_changed is not None:
                try:
                    self.on_pairs_changed(added, removed)
                except Exception:
                    log.exception("feed pool on_pairs_changed hook failed")
        self._changes.notify()
        return added, removed

    def _capped(self, target: list[str]) -> list[str]:
        """``target`` cut to ``max_pairs``: the pairs tracked now keep their place."""
        cap = self.options.max_pairs
        over = max(0, len(target) - cap)
        if over != self.over_max_pairs:
            log.log(logging.WARNING if over else logging.INFO,
                    "feed pool kraken.max_pairs=%d: %d pairs wanted, %d left out", cap,
                    len(target), over)
            self.over_max_pairs = over
        if not over:
            return target
        owned = self._owner
        kept = [p for p in target if p in owned][:cap]
        return kept + [p for p in target if p not in owned][:cap - len(kept)]

    def _place(self, pairs: list[str]) -> list[FeedClient]:
        """Put ``pairs`` on connections with room; returns the connections opened for them."""
        cap = self.options.pairs_per_connection
        fresh: list[FeedClient] = []
        rest = pairs
        clients = iter(list(self._clients))
        while rest:
            client = next(clients, None)
            if client is None:
                client = self._new_client()
                fresh.append(client)
            room = cap - client.pair_count
            if room <= 0:
                continue
            take, rest = rest[:room], rest[room:]
            client.add_pairs_nowait(take)
            for p in take:
                self._owner[p] = client
        return fresh

    def _unplace(self, pairs: list[str]) -> None:
        groups: dict[FeedClient, list[str]] = {}
        for p in pairs:
            groups.setdefault(self._owner.pop(p), []).append(p)
        for client, ps in groups.items():
            client.remove_pairs_nowait(ps)

    def _log_changes(self, added: list[str], removed: list[str]) -> None:
        listing = self._selection.listing.status
        for verb, pairs in (("added", added), ("dropped", removed)):
            if not pairs:
                continue
            for p in pairs[:LOG_EACH]:
                why = self._selection.pattern_for(p)
                log.info("feed pool pair %s pair=%s listed=%s pattern=%s", verb, p,
                         listing.get(p, "no"), why or "-")
            if len(pairs) > LOG_EACH:
                log.info("feed pool %d more pairs %s", len(pairs) - LOG_EACH, verb)
        log.info("feed pool pairs=%d connections=%d added=%d dropped=%d", len(self._owner),
                 len(self._clients), len(added), len(removed))

    # -- the lead's listing --------------------------------------------------------------

    def _lead_event(self, event: Event) -> None:
        if not isinstance(event, Instrument):
            return
        first = not self._selection.listing.known
        changes = self._selection.listing.apply(event)
        if first:
            listed = self._selection.listing.status
            log.info("feed listing pairs=%d online=%d", len(listed),
                     len(self._selection.listing.online()))
        else:
            for change in changes:
                self._log_listing(change)
        self._wake.set()

    def _log_listing(self, change: ListingChange) -> None:
        if change.pair in self._owner or self._selection.pattern_for(change.pair):
            log.info("feed listing pair=%s status=%s->%s", change.pair,
                     change.old or "unlisted", change.new or "unlisted")

    # -- running -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Run the pool in a background task (see :meth:`stop`)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"kms-feed-pool {self.url}")
            self._task.add_done_callback(report_failure(log, "feed pool stopped"))

    async def stop(self) -> None:
        """Close every connection; raises what ended the pool, if anything."""
        self._stop.set()
        self._wake.set()
        task = self._task
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait({task})
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise failure

    async def wait_stopped(self) -> None:
        """Wait until the pool has stopped, for whatever reason (raises nothing)."""
        if self._task is not None:
            await asyncio.wait({self._task})

    async def run(self) -> None:
        """Open the connections and follow the listing until :meth:`stop` (or a failure)."""
        if self._running:
            raise RuntimeError("this FeedPool is already running")
        self._running = True
        try:
            for client in list(self._clients):
                await self._launch(client)
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._stop.is_set() or self._failure is not None:
                    break
                await self._reconcile()
        finally:
            self._stop.set()  # what the connections do from here is the pool's doing
            stale = None if self._failure is None else f"feed stopped: {self._failure}"
            await asyncio.gather(*(c.stop(stale=stale) for c in self._clients),
                                 return_exceptions=True)
            for w in self._watchers:
                w.cancel()
            self._finished = True
            self._changes.close()
        if self._failure is not None:
            raise self._failure

    def _new_client(self) -> FeedClient:
        self._serial += 1
        client = FeedClient(
            self.options, (),
            on_state_change=self._state_changed,
            on_frame=self._on_frame,
            on_event=self._lead_event if not self._clients else None,
            gate=self._gate,
            applying=self._applying,
            clock=self._clock,
            rng=random.Random(self._rng.random()),
            event_queue_size=1,  # the pool hands the changes on; nobody reads the client's
            name=str(self._serial),
        )
        self._clients.append(client)
        return client

    async def _launch(self, client: FeedClient) -> None:
        await client.start()
        watcher = asyncio.create_task(self._watch(client), name="kms-feed-pool-watch")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, client: FeedClient) -> None:
        """A connection that stops on its own (a failure) stops the pool."""
        await client.wait_stopped()
        if self._stop.is_set() or client in self._retired or self._failure is not None:
            return
        failure: BaseException
        try:
            await client.stop()
        except Exception as exc:
            failure = exc
        else:
            failure = FeedError(f"feed connection {client.name} stopped")
        if self._failure is None:  # the first failure is the one to tell
            self._failure = failure
            log.error("feed pool stopping: connection %s failed (%s)", client.name, failure)
        self._wake.set()

    async def _retire_empty(self) -> None:
        for client in [c for c in self._clients[1:] if c.pair_count == 0]:
            self._retired.add(client)
            self._clients.remove(client)
            log.info("feed pool connection %s closed (no pairs left)", client.name)
            await client.stop()

    def _gate(self) -> float:
        """Seconds until this attempt's turn in the pool's connection budget (counted)."""
        now = asyncio.get_running_loop().time()
        return self._budget.reserve(now) - now

    def _state_changed(self, event: FeedEvent) -> None:
        self._changes.publish((event,), self.on_state_change)
