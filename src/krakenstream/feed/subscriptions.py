"""One feed's book subscriptions as a pure state machine: frames in, requests and pair state
changes out. (A little over 500 lines on purpose: one state machine, every transition in
one class where it can be read whole, as websockets keeps its ``protocol.py``.)

Sans-I/O, the way websockets keeps ``protocol.py`` apart from its connections: no asyncio,
no sockets, no clock. The connection layer (:mod:`.client`) drives it:

- in: ``connected()`` when a socket opens, every frame in order (``receive``), the pairs the
  caller adds or removes, ``disconnected()`` when the socket is gone;
- out: ``requests_to_send()`` (what to write now), ``events_received()`` (pair state
  changes, in order), ``next_deadline()`` (when to ask again if nothing arrives),
  ``expired()`` (why the connection must end: an answer that never came).

Times are passed in: ``now`` from a monotonic clock decides pacing and timeouts, ``wall``
(epoch seconds) is stamped on statuses and events.

The decisions it holds, each tested in ``tests/test_feed_subscriptions.py``:

- **Answers** are matched to their request by ``req_id`` and symbol, never by ``method``
  (Kraken answers a failed unsubscribe with ``method: subscribe``). An answer naming no
  symbol is for every symbol of its request still waiting. An answer to nothing we sent is
  taken only as a success for a symbol we are subscribing.
- **A refusal** puts the pair in ``error`` with Kraken's words (logged once); it is not asked
  for again, on this connection or any later one, until ``add_pairs`` names it: a pair
  Kraken does not list would otherwise be refused again on every reconnect (10,000 of them
  were resent each time). The pair stays tracked, in ``error``, until it is removed.
  ``Already subscribed`` is not a refusal: the book will get no full book from that request,
  so the pair is cycled (unsubscribe, subscribe). ``Subscription Not Found`` to an
  unsubscribe means it is done.
- **``Exceeded msg rate``** is not a refusal either: the symbols of that request go back to
  be asked again, and every request after it is paced further apart (doubling up to
  :data:`MAX_PACING`, easing back towards ``subscribe_pacing`` as requests succeed).
- **A void book** (checksum mismatch, crossed, precision changed) voids only its pair: the
  pair goes ``resyncing`` and is unsubscribed then subscribed again for a fresh full book; no
  other pair is touched.
- **Sending**: the ``instrument`` subscription first (precisions), book requests once its
  list came (or after ``heartbeat_timeout`` without it); unsubscribes before subscribes,
  ``subscribe_batch`` symbols per request, one request per pacing interval; an application
  ``ping`` when the line has been quiet for half the heartbeat timeout. Work is kept as
  per-pair flags, not a queue of messages: the backlog is bounded by the number of pairs
  and repeated requests for one pair collapse into one.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import replace

from ..core.book import OrderBook, Verdict
from ..core.events import BadFrame, Event, Instrument, Status, SubscriptionAck
from ..core.pairs import check_pair
from ..core.session import BookResult, BookSession
from ..errors import FeedError
from .options import FeedOptions
from .requests import Pacing, PairSub, Request, Sub, Waiting
from .status import FeedEvent, PairState, PairStatus

log = logging.getLogger(__name__)

#: a log line about bad frames at most this often (the rest are counted)
BAD_FRAME_LOG_INTERVAL = 10.0
_RATE_LIMITED = "exceeded msg rate"


class _Instrument(enum.Enum):
    UNSENT = "unsent"
    WAITING = "waiting"  #: subscribed, no list yet: book requests wait
    SEEN = "seen"
    GAVE_UP = "gave_up"  #: no list in time: books are subscribed anyway


class Subscriptions:
    """The pairs of one feed, their states across connections, and what to ask the exchange.

    One instance lives as long as its client; :meth:`connected` starts the per-connection
    part afresh (a new :class:`~krakenstream.core.session.BookSession`, nothing subscribed).
    """

    def __init__(self, options: FeedOptions, pairs: Iterable[str] = (), *, wall: float) -> None:
        self.options = options
        self.depth = options.depth
        self.batch = options.subscribe_batch
        self._pace = Pacing(options.subscribe_pacing)
        self.instrument_timeout = options.heartbeat_timeout
        self.pairs: dict[str, PairStatus] = {}
        #: pairs the exchange refused: not asked for again on any connection until named
        self.refused: set[str] = set()
        for p in pairs:
            check_pair(p)
            self.pairs.setdefault(p, PairStatus(p, since=wall))
        #: the exchange's last ``status`` (online, maintenance, ...) and its connection id
        self.system: str | None = None
        self.connection_id: int | None = None
        self.bad_frames = 0
        self.connections = 0
        self.is_open = False
        self.session = BookSession(default_depth=self.depth)
        self._subs: dict[str, PairSub] = {}
        self._requests: dict[int, Waiting] = {}
        self._instrument = _Instrument.UNSENT
        self._opened_at = self._last_frame = self._last_ping = self._last_answer = 0.0
        #: something may be due to send (the next scan in :meth:`requests_to_send` tells)
        self.dirty = False
        self._req_id = 0
        self._events: list[FeedEvent] = []
        self._bad_logged_at = float("-inf")
        self._bad_unlogged = 0

    # -- the connection ------------------------------------------------------------------

    def connected(self, now: float, wall: float) -> None:
        """A new socket is open: nothing is subscribed on it yet."""
        self.connections += 1
        if self.connections > 1:
            for st in self.pairs.values():
                st.reconnects += 1
        self.session = BookSession(default_depth=self.depth)
        self._subs = {}
        self._requests = {}
        self._instrument = _Instrument.UNSENT
        self._opened_at = self._last_frame = self._last_ping = self._pace.next_at = now
        self._last_answer = now
        self.dirty = True
        self.is_open = True

    def disconnected(self, detail: str, wall: float, *, stale: bool = True) -> None:
        """The socket is gone; with ``stale`` every pair not in ``error`` goes ``stale``
        (not when the client is stopping on purpose)."""
        self.is_open = False
        if stale:
            for st in self.pairs.values():
                if st.state is not PairState.ERROR:
                    self._set_state(st, PairState.STALE, detail, wall)

    # -- the pairs -----------------------------------------------------------------------

    def add_pairs(self, pairs: Iterable[str], wall: float) -> list[str]:
        """Track more pairs (subscribed on the open connection); returns the ones new.

        A pair already tracked but refused before (``error``) is asked for again.
        """
        checked = [check_pair(p) for p in pairs]
        added = []
        for p in checked:
            self.refused.discard(p)
            st = self.pairs.get(p)
            if st is None:
                self.pairs[p] = PairStatus(p, since=wall)
                added.append(p)
            sub = self._subs.get(p)
            if sub is None:
                continue
            sub.refused = False
            if st is None and sub.state in (Sub.ACTIVE, Sub.PENDING):
                # removed and added back before its unsubscribe went out: its book was
                # dropped, so only a fresh full book can bring it back
                sub.resync = True
        self.dirty = True
        return added

    def remove_pairs(self, pairs: Iterable[str]) -> list[str]:
        """Stop tracking pairs (unsubscribed on the open connection); returns those removed."""
        removed = []
        for p in pairs:
            self.refused.discard(p)
            if self.pairs.pop(p, None) is not None:
                self.session.drop(p)
                removed.append(p)
        self.dirty = True
        return removed

    def status(self) -> dict[str, PairStatus]:
        """A copy of every tracked pair's status."""
        return {p: replace(st) for p, st in self.pairs.items()}

    def book(self, pair: str) -> OrderBook | None:
        """The pair's book if it may be used now (live, verified, not crossed), else None."""
        st = self.pairs.get(pair)
        if st is None or st.state is not PairState.LIVE or not self.is_open:
            return None
        book = self.session.books.get(pair)
        if book is None or not book.valid:
            return None
        return book

    def all_live(self, wanted: Iterable[str] | None = None) -> bool:
        """Whether every ``wanted`` pair (default: every pair not in ``error``) is ``live``.

        Raises :class:`FeedError` with the exchange's words if a pair named is in ``error``.
        """
        if wanted is None:
            return all(st.state in (PairState.LIVE, PairState.ERROR)
                       for st in self.pairs.values())
        names = list(wanted)
        for p in names:
            st = self.pairs.get(p)
            if st is not None and st.state is PairState.ERROR:
                raise FeedError(f"{p}: {st.error}")
        return all((st := self.pairs.get(p)) is not None and st.state is PairState.LIVE
                   for p in names)

    def subscription(self, pair: str) -> Sub:
        """Where the pair's subscription stands on this connection."""
        sub = self._subs.get(pair)
        return Sub.NONE if sub is None else sub.state

    @property
    def idle(self) -> bool:
        """Open, every request answered, and the last scan found nothing left to send."""
        return (self.is_open and not self._requests and not self.dirty
                and self._instrument in (_Instrument.SEEN, _Instrument.GAVE_UP))

    @property
    def pacing(self) -> float:
        """Seconds between requests now (``subscribe_pacing`` unless Kraken complained)."""
        return self._pace.interval

    @property
    def rate_limited(self) -> int:
        """``Exceeded msg rate`` answers seen."""
        return self._pace.complaints

    # -- frames in -----------------------------------------------------------------------

    def receive(self, text: str | bytes, now: float, wall: float) -> Event | None:
        """Take one frame off the socket; returns its event if it is not a book frame."""
        self._last_frame = now
        event, results = self.session.receive(text)
        if results:
            for r in results:
                self._on_book(r, wall)
            return None
        if isinstance(event, SubscriptionAck):
            self._on_ack(event, now, wall)
        elif isinstance(event, BadFrame):
            self._on_bad_frame(event, now)
        elif isinstance(event, Status):
            self._on_status(event)
        elif isinstance(event, Instrument):
            if self._instrument is _Instrument.WAITING:
                self._instrument = _Instrument.SEEN
                self.dirty = True
            # a precision change leaves a fresh, void book: only a new full book fixes it
            for p, st in self.pairs.items():
                book = self.session.books.get(p)
                if st.state is PairState.LIVE and book is not None and not book.valid:
                    self._resync(p, "precision changed", wall)
        return event

    def _on_book(self, r: BookResult, wall: float) -> None:
        symbol = r.symbol
        st = self.pairs.get(symbol)
        if st is None:  # removed meanwhile, or never asked for: keep nothing
            self.session.drop(symbol)
            return
        st.frames += 1
        st.last_frame_time = wall
        sub = self._sub(symbol)
        if sub.state is Sub.PENDING and r.full_book:
            # data before the ack (a replayed recording): the data proves the subscription
            sub.state = Sub.ACTIVE
            for req_id, w in list(self._requests.items()):
                w.symbols.discard(symbol)
                if not w.symbols and w.request.channel == "book":
                    del self._requests[req_id]
        verdict = r.verdict
        if verdict is Verdict.VERIFIED:
            if st.state is not PairState.LIVE and not sub.resync:
                self._set_state(st, PairState.LIVE,
                                "full book verified" if r.full_book else "verified", wall)
        elif verdict is Verdict.MISMATCH:
            st.mismatches += 1
            book = r.book
            self._resync(symbol, f"checksum mismatch (got {book.checksum}, computed "
                                 f"{book.computed_checksum})", wall)
        elif verdict is Verdict.CROSSED:
            st.crossed += 1
            self._resync(symbol, "crossed book", wall)
        # IGNORED: an update for a void book, on its way to a fresh full book

    def _resync(self, symbol: str, why: str, wall: float) -> None:
        """Void only this pair's book and ask for a fresh full book."""
        st = self.pairs[symbol]
        sub = self._sub(symbol)
        if sub.resync:
            return
        st.resyncs += 1
        book = self.session.books.get(symbol)
        if book is not None:
            book.invalidate()
        sub.resync = True
        self.dirty = True
        log.warning("feed resync pair=%s reason=%r resyncs=%d", symbol, why, st.resyncs)
        self._set_state(st, PairState.RESYNCING, why, wall)

    def _on_ack(self, ack: SubscriptionAck, now: float, wall: float) -> None:
        rate_limited = _RATE_LIMITED in (ack.error or "").lower()
        w = None if ack.req_id is None else self._requests.get(ack.req_id)
        if w is None:
            if rate_limited:  # cannot tell which request: slowing down is still right
                self._slow_down(now, ack.error)
                return
            # not an answer to anything pending: without its request the method cannot be
            # trusted, so only a success for a symbol we are subscribing is taken
            sub = self._subs.get(ack.symbol or "")
            if ack.success and ack.channel == "book" and sub is not None \
                    and sub.state is Sub.PENDING:
                sub.state = Sub.ACTIVE
                self.dirty = True
            else:
                log.info("feed ignored an unmatched answer req_id=%s symbol=%s error=%r",
                         ack.req_id, ack.symbol, ack.error)
            return
        self._last_answer = now
        req = w.request
        if req.channel != "book":  # the instrument subscription
            del self._requests[req.req_id]
            if rate_limited:
                self._instrument = _Instrument.UNSENT  # asked again, later
                self._slow_down(now, ack.error)
            elif not ack.success:
                log.warning("feed instrument subscription refused error=%r "
                            "(precisions will be inferred from checksums)", ack.error)
                self._instrument = _Instrument.GAVE_UP
                self.dirty = True
            return
        if ack.symbol is not None and ack.symbol in w.symbols:
            symbols = [ack.symbol]
        elif ack.symbol is None:
            # an answer that names no symbol (e.g. "Symbol field must be an array") is for
            # every symbol of the request still waiting
            symbols = sorted(w.symbols)
        else:
            log.info("feed ignored an answer for a symbol not in its request req_id=%s "
                     "symbol=%s", req.req_id, ack.symbol)
            return
        if rate_limited:
            self._slow_down(now, ack.error)
        for symbol in symbols:
            w.symbols.discard(symbol)
            if rate_limited:
                # not a refusal: ask again (subscribe) or go on unsubscribing, more slowly
                self._sub(symbol).state = Sub.NONE if req.method == "subscribe" else Sub.ACTIVE
                self.dirty = True
            else:
                self._apply_ack(req.method, symbol, ack, wall)
        if not w.symbols:
            del self._requests[req.req_id]
            if not rate_limited:
                self._pace.ease()

    def _apply_ack(self, method: str, symbol: str, ack: SubscriptionAck, wall: float) -> None:
        sub = self._sub(symbol)
        st = self.pairs.get(symbol)
        self.dirty = True  # removed, voided or refused meanwhile: the next scan acts on it
        if method == "unsubscribe":
            if not ack.success and "not found" not in (ack.error or "").lower():
                log.warning("feed unsubscribe refused pair=%s error=%r", symbol, ack.error)
            sub.state = Sub.NONE
            sub.resync = False
            self.session.drop(symbol)
            return
        if ack.success:
            sub.state = Sub.ACTIVE
            if st is not None and st.state is PairState.ERROR:
                self._set_state(st, PairState.CONNECTING, "subscribed", wall)
            return
        error = ack.error or "unknown error"
        if "already subscribed" in error.lower():
            # subscribed, but no full book will come for this request: cycle it
            sub.state = Sub.ACTIVE
            if st is not None:
                self._resync(symbol, error, wall)
            return
        sub.state = Sub.NONE
        sub.refused = True
        if st is not None:
            self.refused.add(symbol)
            st.error = error
            log.warning("feed subscribe refused pair=%s error=%r", symbol, error)
            self._set_state(st, PairState.ERROR, error, wall)

    def _slow_down(self, now: float, error: str | None) -> None:
        self._pace.slow_down(now)
        self.dirty = True
        log.warning("feed exchange says %r: one request per %.2f s from now on (complaints=%d)",
                    error, self.pacing, self.rate_limited)

    def _on_status(self, ev: Status) -> None:
        old, self.system = self.system, ev.system
        if ev.connection_id is not None:
            self.connection_id = ev.connection_id
        if ev.system != old:
            level = logging.INFO if ev.system == "online" else logging.WARNING
            log.log(level, "feed exchange status system=%s previous=%s", ev.system, old)

    def _on_bad_frame(self, ev: BadFrame, now: float) -> None:
        self.bad_frames += 1
        if now - self._bad_logged_at >= BAD_FRAME_LOG_INTERVAL:
            log.warning("feed bad frame total=%d suppressed=%d reason=%r sample=%r",
                        self.bad_frames, self._bad_unlogged, ev.reason, ev.text[:120])
            self._bad_logged_at, self._bad_unlogged = now, 0
        else:
            self._bad_unlogged += 1

    # -- requests out --------------------------------------------------------------------

    def requests_to_send(self, now: float, wall: float) -> list[Request]:
        """What to write now, in order; each is counted as sent at ``now``."""
        if not self.is_open:
            return []
        out: list[Request] = []
        if self._instrument is _Instrument.WAITING and \
                now - self._opened_at >= self.instrument_timeout:
            log.warning("feed no instrument list within %.1f s; precisions will be "
                        "inferred", self.instrument_timeout)
            self._instrument = _Instrument.GAVE_UP
            self.dirty = True
        if self._pace.ready(now):
            req = self._next_request(now, wall)
            if req is not None:
                out.append(req)
                self._pace.sent(now)
        half = self.options.heartbeat_timeout / 2
        if now - self._last_frame >= half and now - self._last_ping >= half:
            self._last_ping = now
            self._req_id += 1
            out.append(Request(self._req_id, "ping"))
        return out

    def _next_request(self, now: float, wall: float) -> Request | None:
        """The one request due (the instrument first, then unsubscribes, then subscribes)."""
        if self._instrument is _Instrument.UNSENT:
            self._instrument = _Instrument.WAITING
            return self._track(now, "subscribe", "instrument", ())
        if self._instrument is _Instrument.WAITING or not self.dirty:
            return None
        closing, opening = self._due(self.batch)
        if closing:
            for s in closing:
                self._subs[s].state = Sub.CLOSING
            return self._track(now, "unsubscribe", "book", closing)
        if opening:
            for s in opening:
                sub = self._sub(s)
                sub.state = Sub.PENDING
                sub.resync = False
                st = self.pairs[s]
                if st.state is PairState.STALE:
                    self._set_state(st, PairState.CONNECTING, "subscribing", wall)
            return self._track(now, "subscribe", "book", opening)
        # nothing due: forget what no longer matters on this connection
        for s in [s for s, sub in self._subs.items()
                  if sub.state is Sub.NONE and s not in self.pairs]:
            del self._subs[s]
        self.dirty = False
        return None

    def _due(self, limit: int) -> tuple[list[str], list[str]]:
        """Up to ``limit`` symbols to unsubscribe; if none, up to ``limit`` to subscribe."""
        pairs = self.pairs
        closing: list[str] = []
        for symbol, sub in self._subs.items():
            if sub.state is Sub.ACTIVE and (sub.resync or symbol not in pairs):
                closing.append(symbol)
                if len(closing) == limit:
                    break
        if closing:
            return closing, []
        opening: list[str] = []
        subs, refused = self._subs, self.refused
        for symbol in pairs:
            if symbol in refused:
                continue
            entry = subs.get(symbol)
            if entry is None or (entry.state is Sub.NONE and not entry.refused):
                opening.append(symbol)
                if len(opening) == limit:
                    break
        return [], opening

    def _track(self, now: float, method: str, channel: str, symbols: Iterable[str]) -> Request:
        self._req_id += 1
        req = Request(self._req_id, method, channel, tuple(symbols),
                      self.depth if channel == "book" else None)
        self._requests[req.req_id] = Waiting(req, now, set(req.symbols))
        log.debug("feed send method=%s channel=%s req_id=%d symbols=%s",
                  method, channel, req.req_id, list(req.symbols))
        return req

    def expired(self, now: float) -> str | None:
        """Why the connection must end now (a request never answered), or None.

        A request is overdue once ``ack_timeout`` passed since it was sent *and* since the
        last answer to any request: an exchange that answers late but keeps answering (a
        burst of subscriptions, a busy moment) is slow, not lost, and dropping the connection
        would only resubscribe everything on it and make the burst bigger.
        """
        timeout = self.options.ack_timeout
        for req_id, w in self._requests.items():
            if now - max(w.sent_at, self._last_answer) >= timeout:
                return (f"no answer to {w.request.method} req_id={req_id} within "
                        f"{timeout:g} s")
        return None

    def next_deadline(self, now: float) -> float | None:
        """When :meth:`requests_to_send` or :meth:`expired` may have something new even if
        no frame arrives and nothing changes (a monotonic time), or None."""
        if not self.is_open:
            return None
        half = self.options.heartbeat_timeout / 2
        times = [max(self._last_frame, self._last_ping) + half]
        if self._requests:
            oldest = min(w.sent_at for w in self._requests.values())
            times.append(max(oldest, self._last_answer) + self.options.ack_timeout)
        if self._instrument is _Instrument.WAITING:
            times.append(self._opened_at + self.instrument_timeout)
        elif self.dirty or self._instrument is _Instrument.UNSENT:
            times.append(self._pace.next_at)
        return min(times)

    # -- state changes out ---------------------------------------------------------------

    def events_received(self) -> list[FeedEvent]:
        """The pair state changes since the last call, in order."""
        events, self._events = self._events, []
        return events

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def _set_state(self, st: PairStatus, new: PairState, reason: str, wall: float) -> None:
        old = st.state
        if old is new:
            return
        st.state, st.since = new, wall
        if new is not PairState.ERROR and old is PairState.ERROR:
            st.error = None
        # an error is a refusal, logged at WARNING with Kraken's words as it came
        level = logging.INFO if new in (PairState.LIVE, PairState.CONNECTING, PairState.ERROR) \
            else logging.WARNING
        log.log(level, "feed pair=%s state=%s->%s reason=%r", st.pair, old.value, new.value,
                reason)
        self._events.append(FeedEvent(st.pair, old, new, reason, wall))

    def _sub(self, symbol: str) -> PairSub:
        s = self._subs.get(symbol)
        if s is None:
            s = self._subs[symbol] = PairSub()
        return s
