"""The orderbook role: live books from the feed, one snapshot per pair per tick onto the bus.

Ticks are aligned to wall-clock multiples of ``snapshot_interval`` (``:00.000``, ``:01.000``,
...): the n-th is n × interval, never the last tick plus an interval, so there is no drift
over hours (an interval like 0.1 s has no exact float). At each
tick every tracked pair whose book is live, verified and not crossed publishes a snapshot,
also when nothing changed; a pair that is stale, resyncing, connecting or in error publishes
nothing, and its next snapshot carries ``gap_before=True`` so history never pretends to be
continuous. A tick that runs late by more than an interval skips the missed ticks and marks
every pair's next snapshot as following a gap. While a tick runs the feed applies no frame and
the cyclic collector waits (:meth:`OrderbookRole.publish_tick`): every snapshot of the tick
shows its book as of the tick, and the loop's time goes to publishing and storing it first. A
tick of thousands of pairs hands the event loop over every :data:`YIELD_EVERY` pairs, so the
history writer stores its first snapshots while the rest are built; all of them carry the
tick's stamp.

Every snapshot also carries what lets a reader *prove* continuity, whatever happens after
it is published: ``origin``, a short random id of this process run (new at every start), and
``seq``, the pair's publish counter in that run (it never restarts within a run, also when
a pair is untracked and tracked again). History readers mark ``gap_before`` wherever the
stored predecessor of a snapshot is not the one published just before it
(:mod:`krakenstream.core.gaps`): a snapshot lost on the bus or by a broker, a restart, a shard
handover; the published flag covers only what this role itself knows of (stale, resync,
error, late tick, start).

What is tracked is bounded: at most ``kraken.max_pairs`` pairs (a request past it is a 409),
and a pair Kraken refuses is dropped at once, listed for ``kraken.refused_keep`` seconds with
Kraken's words (:mod:`.refused`), never asked for again until it is tracked again. A pair no
longer tracked loses its metric series.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import Counter

from ..bus.base import SnapshotBus
from ..config import KrakenSettings, as_options, parse_shard
from ..core.book import OrderBook
from ..core.pairs import is_pair, normalize_selector
from ..core.snapshot import Snapshot
from ..errors import Conflict, NotFound
from ..feed.options import FeedOptions
from ..feed.pool import FeedPool
from ..feed.status import ConnectionStatus, FeedEvent, PairState, PairStatus
from ..tasks import died, report_failure
from .gc_policy import collections_held
from .metrics import Metrics
from .refused import RefusedPairs

log = logging.getLogger(__name__)

#: a publish tick hands the event loop to the other tasks after each this many pairs: the
#: history writer starts storing the tick's first snapshots while the rest are built (the
#: feed, held, applies nothing meanwhile), and no task waits for a whole 3,000-pair tick
YIELD_EVERY = 500


def owns_pair(pair: str, shard: str) -> bool:
    """Whether this process's shard (``"INDEX/COUNT"``, empty = all) owns ``pair``.

    A stable hash (CRC32 of the pair name), so every process agrees without talking.
    """
    if not shard:
        return True
    index, count = parse_shard(shard)
    return zlib.crc32(pair.encode()) % count == index


def new_origin() -> str:
    """A short random id for one orderbook process run: 8 hex digits (32 random bits)."""
    return secrets.token_hex(4)


@dataclass(slots=True)
class _PairTicks:
    seq: int = 0
    gap: bool = True  # the first snapshot after start follows a gap
    published: int = 0
    skipped: int = 0
    last: Snapshot | None = None
    #: False from the moment the pair stops being tracked: a tick under way (it yields)
    #: leaves it out from then on
    tracked: bool = True
    #: the pair's kms_snapshots_published and kms_snapshots_skipped series, looked up once
    #: (``labels()``: 3 µs, about what building the snapshot costs); dropped, with the
    #: series, when the pair stops being tracked, so an old one is never counted, nor one
    #: made anew then
    published_series: Counter | None = None
    skipped_series: Counter | None = None


@dataclass
class OrderbookStats:
    ticks: int = 0
    late_ticks: int = 0
    published: int = 0
    skipped: int = 0


class OrderbookRole:
    """Runs the feed client and the publish ticker. ``await start()`` / ``await stop()``."""

    def __init__(
        self,
        kraken: KrakenSettings,
        bus: SnapshotBus,
        *,
        metrics: Metrics | None = None,
        pairs: Iterable[str] | None = None,
        clock: Callable[[], float] = time.time,
        feed: FeedPool | None = None,
    ) -> None:
        self.settings = kraken
        self.bus = bus
        self.metrics = metrics or Metrics()
        self.interval = kraken.snapshot_interval
        self._clock = clock
        wanted = list(kraken.pairs if pairs is None else pairs)
        shard = kraken.shard
        # pairs named are sharded here; what a pattern brings in is sharded by the pool
        mine = [p for p in wanted if not is_pair(p) or owns_pair(p, shard)]
        self.feed = feed or FeedPool(
            as_options(kraken, FeedOptions), mine,
            owns=(lambda p: owns_pair(p, shard)) if shard else None,
            on_state_change=self._on_state_change, on_pairs_changed=self._on_pairs_changed,
        )
        self._ticks: dict[str, _PairTicks] = {p: _PairTicks() for p in self.feed.pairs}
        #: this process run's id on every snapshot it publishes (with seq: continuity)
        self.origin = new_origin()
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[FeedEvent], None]] = []
        self.stats = OrderbookStats()
        #: pairs Kraken refused, dropped, listed for a while (see .refused)
        self.refused = RefusedPairs(kraken.refused_keep)
        #: refusals not yet dropped (one task drops them in batches), and that task
        self._refusals: dict[str, FeedEvent] = {}
        self._dropping: asyncio.Task[None] | None = None

    # -- the gateway's view ----------------------------------------------------------------

    @property
    def pairs(self) -> tuple[str, ...]:
        return self.feed.pairs

    def status(self) -> dict[str, PairStatus]:
        return self.feed.status()

    def refused_status(self) -> dict[str, PairStatus]:
        """The pairs Kraken refused lately, no longer tracked, in ``error`` with its words."""
        return self.refused.statuses(self._clock())

    def connection(self) -> ConnectionStatus:
        return self.feed.connection_status()

    def connections(self) -> list[ConnectionStatus]:
        """One status per WebSocket connection of the feed."""
        return self.feed.connections()

    def book(self, pair: str) -> OrderBook | None:
        """The live book (verified, not crossed), or None: read it without awaiting."""
        return self.feed.book(pair)

    def last_snapshot(self, pair: str) -> Snapshot | None:
        t = self._ticks.get(pair)
        return None if t is None else t.last

    def add_listener(self, fn: Callable[[FeedEvent], None]) -> None:
        """Call ``fn(event)`` on every pair state change (the gateway's WebSocket uses it)."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[FeedEvent], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    async def track(self, selector: str) -> list[str]:
        """Start tracking a pair, or the pairs a pattern (``*/EUR``) matches now and later;
        returns the pairs added. Raises Conflict if a pair named is already tracked."""
        selector = normalize_selector(selector)
        if is_pair(selector) and selector in self.feed.pairs:
            raise Conflict(f"{selector} is already tracked")
        cap = self.settings.max_pairs
        would = self.feed.would_track(selector)
        if would > cap:
            raise Conflict(
                f"cannot track {selector}: it would make {would} pairs, more than "
                f"kraken.max_pairs ({cap})", hint="untrack some pairs, or raise kraken.max_pairs")
        self.refused.discard(selector)  # tracked again: a retry
        added = await self.feed.track(selector)
        self._now_tracked(added)
        log.info("pair tracked pair=%s added=%d", selector, len(added))
        return added

    async def untrack(self, selector: str) -> list[str]:
        """Stop tracking a pair or a pattern (and the pairs it brought); returns the pairs
        removed. Raises NotFound if it is not tracked."""
        selector = normalize_selector(selector)
        tracked = self.feed.pairs if is_pair(selector) else self.feed.patterns
        if selector not in tracked:
            if self.refused.discard(selector):  # dropped already: now no longer listed
                log.info("pair untracked pair=%s (refused by Kraken, no longer listed)",
                         selector)
                return []
            raise NotFound(f"{selector} is not tracked")
        removed = await self.feed.untrack(selector)
        self._no_longer_tracked(removed)
        log.info("pair untracked pair=%s removed=%d", selector, len(removed))
        return removed

    def _on_pairs_changed(self, added: list[str], removed: list[str]) -> None:
        self._now_tracked(added)
        self._no_longer_tracked(removed)

    def _now_tracked(self, pairs: list[str]) -> None:
        for p in pairs:
            t = self._ticks.get(p)
            if t is None:
                self._ticks[p] = _PairTicks()
            else:
                t.tracked = True

    def _no_longer_tracked(self, pairs: list[str]) -> None:
        """Untracked, delisted, offline or refused: the pair follows a gap if it is tracked
        again, and its series are gone (a tick under way publishes nothing more for it).
        Said by the feed's hook and by the role's own untracking (either may come first)."""
        for p in pairs:
            t = self._ticks.get(p)
            if t is not None:
                # its seq goes on if it is tracked again: a restarted count under the same
                # origin would make history look continuous across the untracked time
                t.gap = True
                t.tracked = False
                t.published_series = t.skipped_series = None
            self.metrics.forget_pair(p)

    async def _drop_refused(self) -> None:
        """Stop tracking the pairs Kraken refused, in batches (a subscribe request names up
        to ``subscribe_batch`` pairs, refused together), and keep their words listed. The
        feed logged each refusal with Kraken's words; this is one line per batch."""
        while self._refusals:
            events, self._refusals = self._refusals, {}
            status = self.feed.status()
            # still refused: not untracked, nor tracked again and accepted, meanwhile
            pairs = [p for p in events if (st := status.get(p)) is not None
                     and st.state is PairState.ERROR]
            if not pairs:
                continue
            self._no_longer_tracked(await self.feed.untrack_all(pairs))
            for p in pairs:
                t = self._ticks.get(p)
                if t is not None and t.seq == 0:  # never published: no seq to go on from
                    del self._ticks[p]
                self.refused.add(p, status[p].error or events[p].reason, events[p].time)
            shown = ", ".join(pairs[:5]) + (f" and {len(pairs) - 5} more" if len(pairs) > 5
                                            else "")
            log.info("pairs dropped n=%d (Kraken refused them; listed in error for %g s, "
                     "kms track PAIR tries again): %s", len(pairs), self.refused.keep, shown)

    def problems(self) -> list[str]:
        """What /health says of this role's own tasks: the publish ticker or the feed gone."""
        out: list[str] = []
        why = died(self._task)
        if why is not None:
            out.append(f"orderbook role: publish ticker stopped ({why}): no more snapshots")
        why = died(self.feed.task)
        if why is not None:
            out.append(f"orderbook role: the feed stopped ({why})")
        return out

    # -- running ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.feed.start()
        self._task = asyncio.create_task(self._ticker(), name="kms-orderbook-ticker")
        self._task.add_done_callback(report_failure(
            log, "orderbook role: publish ticker stopped, no more snapshots until a restart"))

    async def stop(self) -> None:
        """Stop ticking and stop the feed. Snapshots already published stay on the bus.

        Never raises for a task that failed earlier: that was logged when it happened, and
        the daemon's shutdown must go on to drain the bus and close the stores.
        """
        task, self._task = self._task, None
        tasks = [t for t in (task, self._dropping) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self.feed.stop()
        except Exception as exc:
            log.warning("orderbook role: the feed had already stopped (%s: %s)",
                        type(exc).__name__, exc)

    def _on_state_change(self, event: FeedEvent) -> None:
        # the feed client logs the change itself; here it drops a pair Kraken refused
        # (an error is only ever a refusal) and fans the change out
        if event.new is PairState.ERROR:
            self._refusals[event.pair] = event
            if self._dropping is None or self._dropping.done():
                self._dropping = asyncio.get_running_loop().create_task(
                    self._drop_refused(), name="kms-orderbook-drop-refused")
                self._dropping.add_done_callback(report_failure(
                    log, "dropping the pairs Kraken refused failed"))
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception:  # a listener must never break the feed
                log.exception("state listener failed")

    async def _ticker(self) -> None:
        # ticks are counted, not summed: k * interval is within one rounding of the grid,
        # while adding an interval like 0.1 to the last tick drifts by milliseconds in hours
        interval = self.interval
        k = math.floor(self._clock() / interval) + 1
        while True:
            tick = k * interval
            await asyncio.sleep(max(0.0, tick - self._clock()))
            # the loop sleeps on the monotonic clock: a wake-up a hair early is on time
            now = max(self._clock(), tick)
            if now - tick >= interval:
                # the process stalled past whole ticks: they are gone, say so in the history
                self.stats.late_ticks += 1
                log.warning("publish tick late by %.3f s: marking a gap", now - tick)
                for t in self._ticks.values():
                    t.gap = True
                k = math.floor(now / interval)
                tick = k * interval
            self.metrics.tick_lag.observe(now - tick)
            await self.publish_tick(round(tick * 1000))
            k += 1

    async def publish_tick(self, ts_ms: int) -> int:
        """Publish one snapshot per live pair stamped ``ts_ms``; returns how many.

        The pairs are those tracked when the tick begins. While the tick runs the feed
        applies no frame (they wait in their queues, read off the sockets still) and the
        cyclic collector does not run, so every snapshot shows its book as of the tick and
        the loop's time goes to the tick and to storing it: the loop is handed to the other
        tasks (the history writer storing what is published so far, the gateway) after
        each :data:`YIELD_EVERY` pairs and once more at the end. A pair that stops being
        tracked meanwhile gets nothing more from this tick, one tracked meanwhile waits for
        the next. A tick cancelled half way (the role stopping) counts what it did
        publish."""
        self.stats.ticks += 1
        with self.feed.held(), collections_held():
            return await self._publish_tick(ts_ms)

    async def _publish_tick(self, ts_ms: int) -> int:
        ticks = self._ticks
        # the tick's pairs with their counters, taken before the first yield: the feed's
        # word on what is tracked, now
        todo: list[tuple[str, _PairTicks]] = []
        for p in self.feed.pairs:
            t = ticks.get(p)
            if t is None:
                t = ticks[p] = _PairTicks()
            t.tracked = True
            todo.append((p, t))
        # one snapshot per pair lands at once: the bus keeps whole ticks of them
        self.bus.size_for_pairs(len(todo))
        # the loop runs 3,000 times a second on a busy daemon: its lookups are hoisted
        book_of, publish, from_book = self.feed.book, self.bus.publish, Snapshot.from_book
        origin, metrics = self.origin, self.metrics
        published = skipped = 0
        try:
            for i, (pair, t) in enumerate(todo):
                if i and not i % YIELD_EVERY:
                    await asyncio.sleep(0)
                if not t.tracked:
                    continue
                book = book_of(pair)
                if book is None:
                    t.gap = True
                    t.skipped += 1
                    skipped += 1
                    series = t.skipped_series
                    if series is None:
                        series = t.skipped_series = metrics.snapshots_skipped.labels(pair)
                    series.inc()
                    continue
                t.seq += 1
                snap = from_book(book, ts=ts_ms, seq=t.seq, gap_before=t.gap, origin=origin)
                t.gap = False
                t.last = snap
                t.published += 1
                await publish(snap)
                published += 1
                if t.tracked:  # a bus that suspends: the pair may be gone since
                    series = t.published_series
                    if series is None:
                        series = t.published_series = metrics.snapshots_published.labels(pair)
                    series.inc()
            # one more turn of the loop inside the holds: the history writer, woken by the
            # last of them, stores them before the feed's waiting frames are applied
            await asyncio.sleep(0)
        finally:
            self.stats.published += published
            self.stats.skipped += skipped
        return published

    def export_metrics(self) -> None:
        """Copy the feed's counters into the gauges (called at scrape time). A pair in
        ``error`` (refused, about to be dropped) gets no series of its own: it is counted in
        ``kms_feed_pairs{state="error"}`` and ``kms_feed_refused``."""
        m = self.metrics
        states = dict.fromkeys((s.value for s in PairState), 0)
        for pair, st in self.feed.status().items():
            states[st.state.value] += 1
            if st.state is PairState.ERROR:
                continue
            m.feed_frames.labels(pair).set(st.frames)
            m.feed_mismatches.labels(pair).set(st.mismatches)
            m.feed_resyncs.labels(pair).set(st.resyncs)
            m.feed_live.labels(pair).set(1 if st.state is PairState.LIVE else 0)
        for state, n in states.items():
            m.feed_pairs.labels(state).set(n)
        m.feed_refused.set(self.refused.total)
        m.feed_reconnects.set(self.feed.connection_status().reconnects)
