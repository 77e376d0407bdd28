"""The Kraken WebSocket v2 book feed: one connection, many pairs, always exact or silent.

:class:`FeedClient` is the I/O shell around the pure :class:`~krakenstream.core.session.
BookSession`: it opens the socket, subscribes, reconnects, and turns the session's verdicts
into per-pair states. Parsing, books and checksums all live in the core.

One connection runs three tasks:

- the **reader** takes frames off the socket (and hands each to ``on_frame``, for the
  recorder) into a bounded queue. No frame within ``heartbeat_timeout`` seconds makes the
  feed stale: every pair goes ``stale`` and the connection is replaced. **When the queue is
  full** the reader drops the connection and every book is rebuilt from a fresh full book on
  the next one: Kraken's books carry no sequence number, so a skipped frame could only be
  noticed by a checksum later, and a book with a hole must never be processed.
- the **processor** feeds the queue to the session and reacts to what comes back: a
  verified frame makes its pair ``live``; a mismatch or a crossed book voids only that pair
  and queues an unsubscribe + subscribe for it (``resyncing``); acks are matched to their
  request by ``req_id`` and symbol (never by ``method``: Kraken may answer an unsubscribe
  with ``method: subscribe``), and a refusal puts that pair in ``error`` with Kraken's words.
- the **writer** owns every send: the ``instrument`` subscription first (precisions), then
  pending book subscribes/unsubscribes, ``subscribe_batch`` symbols per request, one request
  per ``subscribe_pacing`` seconds, and an application ``ping`` when the line is quiet. It
  works from per-pair flags rather than a queue of messages, so its backlog is bounded by
  the number of pairs and repeated requests for one pair collapse into one.

Between connections the client waits as :mod:`krakenstream.core.backoff` decides, forever.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Literal, Self

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI, WebSocketException
from websockets.uri import parse_uri

from ..core.backoff import BackoffPolicy, Reason, ReconnectSchedule
from ..core.book import OrderBook, Verdict
from ..core.events import BadFrame, Instrument, Pong, Status, SubscriptionAck
from ..core.pairs import check_depth, check_pair
from ..core.session import BookResult, BookSession
from ..errors import BackendUnavailable, ConfigError, FeedError, InputError
from ..tasks import report_failure
from .options import FeedOptions
from .status import ConnectionStatus, FeedEvent, PairState, PairStatus

log = logging.getLogger(__name__)

#: the largest frame accepted (the instrument list of every Kraken pair is about 1 MB)
MAX_FRAME_BYTES = 16 * 2**20
#: a log line about bad frames at most this often (the rest are counted)
BAD_FRAME_LOG_INTERVAL = 10.0
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_DEFAULTS = FeedOptions()

OnStateChange = Callable[[FeedEvent], None]
OnFrame = Callable[[str], None]


class _Sub(enum.Enum):
    """Where one pair's book subscription stands on the current connection."""

    NONE = "none"  #: not subscribed (nothing sent, or unsubscribed, or refused)
    PENDING = "pending"  #: subscribe sent, no answer yet
    ACTIVE = "active"  #: subscribed
    CLOSING = "closing"  #: unsubscribe sent, no answer yet


@dataclass(slots=True)
class _PairSub:
    state: _Sub = _Sub.NONE
    #: unsubscribe then subscribe again as soon as possible (void book)
    resync: bool = False
    #: the exchange refused it on this connection: do not retry until reconnect or add_pairs
    refused: bool = False


@dataclass(slots=True)
class _Request:
    method: str
    channel: str
    sent_at: float
    #: symbols still waiting for their ack (Kraken acks one symbol at a time)
    pending: set[str] = field(default_factory=set)


class _Ended(Exception):
    """Internal: why a connection ended (raised by, or recorded for, its tasks)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class _Connection:
    """The state of one open socket; thrown away when it closes."""

    def __init__(
        self,
        ws: ClientConnection,
        queue_size: int,
        session: BookSession,
        now: float,
    ) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | bytes] = asyncio.Queue(queue_size)
        self.session = session
        self.subs: dict[str, _PairSub] = {}
        self.requests: dict[int, _Request] = {}
        self.wake = asyncio.Event()
        self.instrument_seen = asyncio.Event()
        self.ended = asyncio.Event()
        self.end_reason: _Ended | None = None
        self.failure: BaseException | None = None
        self.last_frame = now
        self.last_ping = now

    def end(self, reason: Reason, detail: str) -> None:
        if self.end_reason is None:
            self.end_reason = _Ended(reason, detail)
        self.ended.set()

    def sub(self, symbol: str) -> _PairSub:
        s = self.subs.get(symbol)
        if s is None:
            s = self.subs[symbol] = _PairSub()
        return s


class FeedClient:
    """Track many pairs' books on one Kraken v2 connection; reconnect forever.

    ``async with FeedClient(...) as client`` runs it in a task; or ``await client.run()``
    until ``await client.stop()``. A client runs once: after ``stop()`` it stays stopped.

    Hooks: ``on_state_change(event)`` is called synchronously on every pair state change (an
    exception in it is logged, not raised); ``on_frame(text)`` gets every frame as received,
    before processing (an exception in it stops the client and is raised by ``run()``).
    ``clock`` gives the wall-clock epoch seconds stamped on statuses and events.
    """

    def __init__(
        self,
        pairs: Iterable[str] = (),
        *,
        url: str = _DEFAULTS.url,
        depth: int = _DEFAULTS.depth,
        heartbeat_timeout: float = _DEFAULTS.heartbeat_timeout,
        subscribe_batch: int = _DEFAULTS.subscribe_batch,
        subscribe_pacing: float = _DEFAULTS.subscribe_pacing,
        queue_size: int = _DEFAULTS.queue_size,
        backoff_initial: float = _DEFAULTS.backoff_initial,
        backoff_max: float = _DEFAULTS.backoff_max,
        ack_timeout: float = 10.0,
        open_timeout: float = 10.0,
        instrument_timeout: float | None = None,
        give_up_after: int | None = None,
        event_queue_size: int = 1000,
        on_state_change: OnStateChange | None = None,
        on_frame: OnFrame | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        try:
            uri = parse_uri(url)
        except InvalidURI as exc:
            raise ConfigError(f"kraken.url: {url!r} is not a WebSocket URL ({exc})") from exc
        self.url = url
        self.depth = check_depth(depth)
        if heartbeat_timeout <= 0 or ack_timeout <= 0 or open_timeout <= 0:
            raise InputError("heartbeat_timeout, ack_timeout and open_timeout must be > 0")
        if subscribe_batch < 1 or queue_size < 1 or event_queue_size < 1:
            raise InputError("subscribe_batch, queue_size and event_queue_size must be >= 1")
        if give_up_after is not None and give_up_after < 1:
            raise InputError("give_up_after must be None (never) or >= 1")
        self.heartbeat_timeout = heartbeat_timeout
        self.subscribe_batch = subscribe_batch
        self.subscribe_pacing = max(0.0, subscribe_pacing)
        self.queue_size = queue_size
        self.ack_timeout = ack_timeout
        self.open_timeout = open_timeout
        #: how long to wait for the instrument list before subscribing books anyway
        self.instrument_timeout = (
            heartbeat_timeout if instrument_timeout is None else instrument_timeout
        )
        self.give_up_after = give_up_after
        self.on_state_change = on_state_change
        self.on_frame = on_frame
        self._clock = clock
        self._schedule = ReconnectSchedule(
            BackoffPolicy(initial=backoff_initial, maximum=backoff_max), rng or random.Random()
        )
        # a loopback URL (the simulator) never goes through a proxy from the environment
        self._proxy: Literal[True] | None = None if uri.host in _LOOPBACK else True
        self._pairs: dict[str, PairStatus] = {}
        for p in pairs:
            check_pair(p)
            self._pairs.setdefault(p, PairStatus(p, since=clock()))
        self._conn_status = ConnectionStatus(url=url)
        self._conn: _Connection | None = None
        self._events: asyncio.Queue[FeedEvent | None] = asyncio.Queue(event_queue_size)
        self._changed = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._run_task: asyncio.Task[object] | None = None
        self._running = False
        self._finished = False
        self._req_id = 0
        self._connections = 0
        self._bad_logged_at = float("-inf")
        self._bad_unlogged = 0

    @classmethod
    def from_options(
        cls, options: FeedOptions, pairs: Iterable[str] = (), **kwargs: Any
    ) -> FeedClient:
        """A client for ``pairs`` configured by ``options`` (the ``[kraken]`` values)."""
        return cls(
            pairs,
            url=options.url,
            depth=options.depth,
            heartbeat_timeout=options.heartbeat_timeout,
            subscribe_batch=options.subscribe_batch,
            subscribe_pacing=options.subscribe_pacing,
            queue_size=options.queue_size,
            backoff_initial=options.backoff_initial,
            backoff_max=options.backoff_max,
            **kwargs,
        )

    # -- reading the state -------------------------------------------------------------

    @property
    def pairs(self) -> tuple[str, ...]:
        """The pairs tracked (including those in ``error``), in the order added."""
        return tuple(self._pairs)

    def status(self) -> dict[str, PairStatus]:
        """A copy of every tracked pair's status."""
        return {p: replace(st) for p, st in self._pairs.items()}

    def connection_status(self) -> ConnectionStatus:
        return replace(self._conn_status)

    def book(self, pair: str) -> OrderBook | None:
        """The pair's book if it may be used now (live, verified, not crossed), else None.

        This is the live object: read it without awaiting in between, or copy what you need
        (e.g. with :meth:`~krakenstream.core.snapshot.Snapshot.from_book`).
        """
        st = self._pairs.get(pair)
        conn = self._conn
        if st is None or st.state is not PairState.LIVE or conn is None:
            return None
        book = conn.session.books.get(pair)
        if book is None or not book.valid:
            return None
        return book

    async def events(self) -> AsyncIterator[FeedEvent]:
        """State changes as they happen, until the client stops (one reader at a time).

        The buffer holds ``event_queue_size`` events; when nobody reads, the oldest are
        dropped and counted in ``connection_status().events_dropped``.
        """
        while True:
            if self._finished and self._events.empty():
                return
            ev = await self._events.get()
            if ev is None:
                return
            yield ev

    async def wait_live(self, pairs: Iterable[str] | None = None) -> None:
        """Wait until every given pair (default: every tracked pair not in ``error``) is
        ``live``. Bound it with ``asyncio.timeout(...)``.

        Raises :class:`~krakenstream.errors.FeedError` if a pair asked for by name is in
        ``error`` (with the exchange's message), or if the client stops meanwhile.
        """
        wanted = None if pairs is None else list(pairs)

        def done() -> bool:
            if self._finished:
                raise FeedError("the feed client stopped before the books were live")
            if wanted is None:
                return all(
                    st.state in (PairState.LIVE, PairState.ERROR) for st in self._pairs.values()
                )
            for p in wanted:
                st = self._pairs.get(p)
                if st is not None and st.state is PairState.ERROR:
                    raise FeedError(f"{p}: {st.error}")
            return all(
                (st := self._pairs.get(p)) is not None and st.state is PairState.LIVE
                for p in wanted
            )

        while not done():
            await self._changed.wait()

    # -- changing the pairs ------------------------------------------------------------

    async def add_pairs(self, pairs: Iterable[str]) -> None:
        """Track more pairs; subscribed on the open connection at once (no reconnect).

        A pair already tracked but refused before (``error``) is tried again.
        """
        new = [check_pair(p) for p in pairs]
        conn = self._conn
        for p in new:
            st = self._pairs.get(p)
            if st is None:
                self._pairs[p] = PairStatus(p, since=self._clock())
            if conn is not None:
                sub = conn.sub(p)
                sub.refused = False
                if st is None and sub.state in (_Sub.ACTIVE, _Sub.PENDING):
                    # removed and added back before its unsubscribe went out: its book was
                    # dropped, so only a fresh full book can bring it back
                    sub.resync = True
        if conn is not None:
            conn.wake.set()
        self._notify()

    async def remove_pairs(self, pairs: Iterable[str]) -> None:
        """Stop tracking pairs; unsubscribed on the open connection (no reconnect)."""
        conn = self._conn
        for p in pairs:
            if self._pairs.pop(p, None) is not None and conn is not None:
                conn.session.drop(p)
        if conn is not None:
            conn.wake.set()
        self._notify()

    # -- running -----------------------------------------------------------------------

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
        """Run the client in a background task (see :meth:`stop`)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"kms-feed {self.url}")
            self._task.add_done_callback(report_failure(log, "feed client stopped"))

    async def stop(self) -> None:
        """Close the connection and end :meth:`run`; raises what ended the run, if anything."""
        self._stop.set()
        conn = self._conn
        if conn is not None:
            conn.ended.set()
        task = self._task or self._run_task
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait({task})
            # a run() awaited by the caller raises there; one from start() raises here
            failure = None if task.cancelled() else task.exception()
            if failure is not None and task is self._task:
                raise failure

    async def wait_stopped(self) -> None:
        """Wait until :meth:`run` has ended, for whatever reason (raises nothing)."""
        task = self._task or self._run_task
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait({task})

    async def run(self) -> None:
        """Connect, track the pairs, reconnect on any loss, until :meth:`stop`.

        Raises :class:`~krakenstream.errors.BackendUnavailable` only if ``give_up_after``
        consecutive attempts failed to open a connection.
        """
        if self._running:
            raise RuntimeError("this FeedClient is already running")
        self._running = True
        self._run_task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    ws = await self._open()
                    if ws is None:  # stopped while connecting
                        break
                except (OSError, TimeoutError, WebSocketException) as exc:
                    failures += 1
                    detail = _describe_connect_error(exc)
                    self._conn_status.connect_failures += 1
                    self._conn_status.last_error = detail
                    if self.give_up_after is not None and failures >= self.give_up_after:
                        raise BackendUnavailable(
                            f"cannot connect to {self.url}: {detail}",
                            hint="check the URL (kraken.url / --url) and the network",
                        ) from exc
                    reason = (
                        Reason.MAINTENANCE
                        if self._conn_status.system == "maintenance"
                        else Reason.CONNECT_FAILED
                    )
                    delay = self._schedule.failed(reason)
                    log.warning(
                        "feed connect failed url=%s error=%r retry_in=%.2fs", self.url,
                        detail, delay,
                    )
                    await self._sleep(delay)
                    continue
                failures = 0
                opened = loop.time()
                ended = await self._serve(ws)
                self._schedule.connected_for(loop.time() - opened)
                if self._stop.is_set():
                    break
                reason = ended.reason
                if self._conn_status.system == "maintenance":
                    reason = Reason.MAINTENANCE
                delay = self._schedule.failed(reason)
                log.warning(
                    "feed connection lost url=%s reason=%s detail=%r retry_in=%.2fs",
                    self.url, ended.reason.value, ended.detail, delay,
                )
                await self._sleep(delay)
        finally:
            self._conn = None
            self._conn_status.connected = False
            self._finished = True
            self._push_event(None)
            self._notify()

    async def _sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if stopped meanwhile."""
        if delay <= 0:
            return
        try:
            async with asyncio.timeout(delay):
                await self._stop.wait()
        except TimeoutError:
            pass

    async def _open(self) -> ClientConnection | None:
        """Open a connection, or None if stopped first (raises what the attempt raised)."""

        async def attempt() -> ClientConnection:
            return await connect(
                self.url,
                open_timeout=self.open_timeout,
                max_size=MAX_FRAME_BYTES,
                proxy=self._proxy,
                # the heartbeat timeout detects a dead line; protocol pings are a backstop
                ping_interval=20,
                ping_timeout=20,
                close_timeout=2,
            )

        opening = asyncio.create_task(attempt(), name="kms-feed-connect")
        stopping = asyncio.create_task(self._stop.wait(), name="kms-feed-stop")
        try:
            await asyncio.wait({opening, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not opening.done():
                opening.cancel()
                await asyncio.gather(opening, return_exceptions=True)
        if opening.cancelled():
            return None
        ws = opening.result()
        if self._stop.is_set():
            await ws.close()
            return None
        return ws

    async def _serve(self, ws: ClientConnection) -> _Ended:
        """Run one connection's tasks until it ends; returns why."""
        loop = asyncio.get_running_loop()
        self._connections += 1
        now = self._clock()
        st = self._conn_status
        st.connected, st.connected_since, st.last_frame_time = True, now, None
        if self._connections > 1:
            st.reconnects += 1
            for pst in self._pairs.values():
                pst.reconnects += 1
        log.info("feed connected url=%s connection=%d", self.url, self._connections)
        conn = _Connection(
            ws, self.queue_size, BookSession(default_depth=self.depth), loop.time()
        )
        self._conn = conn
        if self._stop.is_set():
            conn.ended.set()
        tasks = [
            asyncio.create_task(self._guard(conn, self._read(conn)), name="kms-feed-reader"),
            asyncio.create_task(self._guard(conn, self._process(conn)), name="kms-feed-proc"),
            asyncio.create_task(self._guard(conn, self._write(conn)), name="kms-feed-writer"),
        ]
        try:
            await conn.ended.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                await ws.close()
            except (OSError, WebSocketException):  # already broken: nothing left to close
                pass
            self._conn = None
            st.connected = False
        ended = conn.end_reason or _Ended(Reason.DROPPED, "stopped")
        st.last_error = ended.detail
        if conn.failure is not None or not self._stop.is_set():
            # a failure ends the client too: no pair may still claim to be live after it
            for pst in self._pairs.values():
                if pst.state is not PairState.ERROR:
                    self._set_state(pst, PairState.STALE, ended.detail)
        if conn.failure is not None:
            raise conn.failure
        return ended

    async def _guard(self, conn: _Connection, work: Coroutine[Any, Any, None]) -> None:
        """Run one of the connection's tasks; any way it ends, end the connection."""
        try:
            await work
        except _Ended as ended:
            conn.end(ended.reason, ended.detail)
        except ConnectionClosed as exc:
            conn.end(Reason.DROPPED, _describe_close(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug, or an on_frame hook that failed: stop the client
            conn.failure = exc
            conn.end(Reason.PROTOCOL, f"{type(exc).__name__}: {exc}")
        else:
            conn.end(Reason.DROPPED, "task ended")

    # -- reader ------------------------------------------------------------------------

    async def _read(self, conn: _Connection) -> None:
        ws, queue, timeout = conn.ws, conn.queue, self.heartbeat_timeout
        loop = asyncio.get_running_loop()
        on_frame = self.on_frame
        while True:
            try:
                async with asyncio.timeout(timeout):
                    msg = await ws.recv()
            except TimeoutError:
                raise _Ended(Reason.STALE, f"no frame for {timeout:g} s") from None
            conn.last_frame = loop.time()
            self._conn_status.last_frame_time = self._clock()
            if on_frame is not None:
                on_frame(msg if isinstance(msg, str) else msg.decode("utf-8", "replace"))
            try:
                queue.put_nowait(msg)
            except asyncio.QueueFull:
                self._conn_status.overflows += 1
                log.warning(
                    "feed queue full size=%d overflows=%d action=reconnect-and-resync-all",
                    queue.maxsize, self._conn_status.overflows,
                )
                raise _Ended(
                    Reason.OVERFLOW, f"frame queue full ({queue.maxsize} frames)"
                ) from None

    # -- processor ---------------------------------------------------------------------

    async def _process(self, conn: _Connection) -> None:
        queue, handle = conn.queue, self._handle
        while True:
            frame = await queue.get()
            try:
                handle(conn, frame)
            except Exception:
                # a bug, not bad input (the core never raises on input); a book may be half
                # applied, so every book is rebuilt from a fresh full book on a new connection
                self._conn_status.bad_frames += 1
                log.exception("feed failed to process a frame; reconnecting to resync all")
                raise _Ended(Reason.PROTOCOL, "internal error while processing a frame") from None

    def _handle(self, conn: _Connection, text: str | bytes) -> None:
        event, results = conn.session.receive(text)
        if results:
            for r in results:
                self._on_book(conn, r)
            return
        if isinstance(event, SubscriptionAck):
            self._on_ack(conn, event)
        elif isinstance(event, BadFrame):
            self._on_bad_frame(event)
        elif isinstance(event, Status):
            self._on_status(event)
        elif isinstance(event, Instrument):
            conn.instrument_seen.set()
            # a precision change leaves a fresh, void book: only a new full book fixes it
            for p, st in self._pairs.items():
                book = conn.session.books.get(p)
                if st.state is PairState.LIVE and book is not None and not book.valid:
                    self._resync(conn, p, "precision changed")
        elif isinstance(event, Pong) or event is None:
            pass

    def _on_book(self, conn: _Connection, r: BookResult) -> None:
        symbol = r.symbol
        st = self._pairs.get(symbol)
        if st is None:  # removed meanwhile, or never asked for: keep nothing
            conn.session.drop(symbol)
            return
        st.frames += 1
        st.last_frame_time = self._clock()
        sub = conn.sub(symbol)
        if sub.state is _Sub.PENDING and r.full_book:
            # data before the ack (a replayed recording): the data proves the subscription
            sub.state = _Sub.ACTIVE
            for req_id, req in list(conn.requests.items()):
                req.pending.discard(symbol)
                if not req.pending and req.channel == "book":
                    del conn.requests[req_id]
        verdict = r.verdict
        if verdict is Verdict.VERIFIED:
            if st.state is not PairState.LIVE:
                if not sub.resync:
                    self._set_state(
                        st, PairState.LIVE, "full book verified" if r.full_book else "verified"
                    )
        elif verdict is Verdict.MISMATCH:
            st.mismatches += 1
            book = r.book
            self._resync(
                conn, symbol,
                f"checksum mismatch (got {book.checksum}, computed {book.computed_checksum})",
            )
        elif verdict is Verdict.CROSSED:
            st.crossed += 1
            self._resync(conn, symbol, "crossed book")
        # IGNORED: an update for a void book, on its way to a fresh full book

    def _resync(self, conn: _Connection, symbol: str, why: str) -> None:
        """Void only this pair's book and ask for a fresh full book."""
        st = self._pairs[symbol]
        sub = conn.sub(symbol)
        if sub.resync:
            return
        st.resyncs += 1
        book = conn.session.books.get(symbol)
        if book is not None:
            book.invalidate()
        sub.resync = True
        log.warning("feed resync pair=%s reason=%r resyncs=%d", symbol, why, st.resyncs)
        self._set_state(st, PairState.RESYNCING, why)
        conn.wake.set()

    def _on_ack(self, conn: _Connection, ack: SubscriptionAck) -> None:
        req_id = ack.req_id
        req = None if req_id is None else conn.requests.get(req_id)
        if req_id is None or req is None:
            # not an answer to anything pending: without its request the method cannot be
            # trusted, so only a success for a symbol we are subscribing is taken
            sub = conn.subs.get(ack.symbol or "")
            if ack.success and ack.channel == "book" and sub is not None \
                    and sub.state is _Sub.PENDING:
                sub.state = _Sub.ACTIVE
                conn.wake.set()
            else:
                log.info("feed ignored an unmatched answer req_id=%s symbol=%s error=%r",
                         req_id, ack.symbol, ack.error)
            return
        if req.channel != "book":  # the instrument subscription
            if not ack.success:
                log.warning(
                    "feed instrument subscription refused error=%r "
                    "(precisions will be inferred from checksums)", ack.error,
                )
            del conn.requests[req_id]
            return
        if ack.symbol is not None and ack.symbol in req.pending:
            symbols = [ack.symbol]
        elif ack.symbol is None:
            # an answer that names no symbol (e.g. "Symbol field must be an array") is for
            # every symbol of the request still waiting
            symbols = sorted(req.pending)
        else:
            log.info("feed ignored an answer for a symbol not in its request req_id=%s "
                     "symbol=%s", req_id, ack.symbol)
            return
        for symbol in symbols:
            req.pending.discard(symbol)
            self._apply_ack(conn, req.method, symbol, ack)
        if not req.pending:
            del conn.requests[req_id]

    def _apply_ack(self, conn: _Connection, method: str, symbol: str, ack: SubscriptionAck) -> None:
        sub = conn.sub(symbol)
        st = self._pairs.get(symbol)
        if method == "unsubscribe":
            if not ack.success and "not found" not in (ack.error or "").lower():
                log.warning("feed unsubscribe refused pair=%s error=%r", symbol, ack.error)
            sub.state = _Sub.NONE
            sub.resync = False
            conn.session.drop(symbol)
            conn.wake.set()  # a resyncing pair is subscribed again
            return
        if ack.success:
            sub.state = _Sub.ACTIVE
            if st is not None and st.state is PairState.ERROR:
                self._set_state(st, PairState.CONNECTING, "subscribed")
            conn.wake.set()  # removed or voided while subscribing: the writer acts on it
            return
        error = ack.error or "unknown error"
        if "already subscribed" in error.lower():
            # subscribed, but no full book will come for this request: cycle it
            sub.state = _Sub.ACTIVE
            if st is not None:
                self._resync(conn, symbol, error)
            return
        sub.state = _Sub.NONE
        sub.refused = True
        if st is not None:
            st.error = error
            log.warning("feed subscribe refused pair=%s error=%r", symbol, error)
            self._set_state(st, PairState.ERROR, error)

    def _on_status(self, ev: Status) -> None:
        old = self._conn_status.system
        self._conn_status.system = ev.system
        if ev.system != old:
            level = logging.INFO if ev.system == "online" else logging.WARNING
            log.log(level, "feed exchange status system=%s previous=%s", ev.system, old)

    def _on_bad_frame(self, ev: BadFrame) -> None:
        self._conn_status.bad_frames += 1
        now = time.monotonic()
        if now - self._bad_logged_at >= BAD_FRAME_LOG_INTERVAL:
            log.warning(
                "feed bad frame total=%d suppressed=%d reason=%r sample=%r",
                self._conn_status.bad_frames, self._bad_unlogged, ev.reason, ev.text[:120],
            )
            self._bad_logged_at, self._bad_unlogged = now, 0
        else:
            self._bad_unlogged += 1

    # -- writer ------------------------------------------------------------------------

    async def _write(self, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        await self._send(conn, "subscribe", "instrument", [])
        try:
            async with asyncio.timeout(self.instrument_timeout):
                await conn.instrument_seen.wait()
        except TimeoutError:
            log.warning(
                "feed no instrument list within %.1f s; precisions will be inferred",
                self.instrument_timeout,
            )
        tick = min(1.0, self.heartbeat_timeout / 4)
        while True:
            conn.wake.clear()
            if await self._send_pending(conn):
                await asyncio.sleep(self.subscribe_pacing)
                continue
            now = loop.time()
            for req_id, req in conn.requests.items():
                if now - req.sent_at > self.ack_timeout:
                    raise _Ended(
                        Reason.PROTOCOL,
                        f"no answer to {req.method} req_id={req_id} within {self.ack_timeout:g} s",
                    )
            half = self.heartbeat_timeout / 2
            if now - conn.last_frame >= half and now - conn.last_ping >= half:
                conn.last_ping = now
                self._req_id += 1
                ping = {"method": "ping", "req_id": self._req_id}
                await conn.ws.send(orjson.dumps(ping).decode())
            try:
                async with asyncio.timeout(tick):
                    await conn.wake.wait()
            except TimeoutError:
                pass

    async def _send_pending(self, conn: _Connection) -> bool:
        """Send one request if any is due (unsubscribes first); True if one was sent."""
        batch = self.subscribe_batch
        closing: list[str] = []
        for symbol, sub in conn.subs.items():
            if sub.state is _Sub.ACTIVE and (symbol not in self._pairs or sub.resync):
                closing.append(symbol)
                if len(closing) == batch:
                    break
        if closing:
            for s in closing:
                conn.subs[s].state = _Sub.CLOSING
            await self._send(conn, "unsubscribe", "book", closing)
            return True
        opening: list[str] = []
        for symbol, st in self._pairs.items():
            sub = conn.sub(symbol)
            if sub.state is _Sub.NONE and not sub.refused:
                opening.append(symbol)
                if st.state is PairState.STALE:
                    self._set_state(st, PairState.CONNECTING, "subscribing")
                if len(opening) == batch:
                    break
        if opening:
            for s in opening:
                conn.subs[s].state = _Sub.PENDING
                conn.subs[s].resync = False
            await self._send(conn, "subscribe", "book", opening)
            return True
        # forget what no longer matters on this connection
        for symbol in [s for s, sub in conn.subs.items()
                       if sub.state is _Sub.NONE and s not in self._pairs]:
            del conn.subs[symbol]
        return False

    async def _send(
        self, conn: _Connection, method: str, channel: str, symbols: list[str]
    ) -> None:
        self._req_id += 1
        req_id = self._req_id
        params: dict[str, Any] = {"channel": channel}
        if channel == "book":
            params["symbol"] = symbols
            params["depth"] = self.depth
            if method == "subscribe":
                params["snapshot"] = True
        conn.requests[req_id] = _Request(
            method, channel, asyncio.get_running_loop().time(), set(symbols)
        )
        log.debug("feed send method=%s channel=%s req_id=%d symbols=%s",
                  method, channel, req_id, symbols)
        await conn.ws.send(
            orjson.dumps({"method": method, "params": params, "req_id": req_id}).decode()
        )

    # -- state changes -----------------------------------------------------------------

    def _set_state(self, st: PairStatus, new: PairState, reason: str) -> None:
        old = st.state
        if old is new:
            return
        now = self._clock()
        st.state, st.since = new, now
        if new is not PairState.ERROR and old is PairState.ERROR:
            st.error = None
        level = logging.INFO if new in (PairState.LIVE, PairState.CONNECTING) else logging.WARNING
        log.log(level, "feed pair=%s state=%s->%s reason=%r", st.pair, old.value, new.value,
                reason)
        event = FeedEvent(st.pair, old, new, reason, now)
        self._push_event(event)
        if self.on_state_change is not None:
            try:
                self.on_state_change(event)
            except Exception:
                log.exception("feed on_state_change hook failed pair=%s", st.pair)
        self._notify()

    def _push_event(self, event: FeedEvent | None) -> None:
        """Queue an event; when full, drop the oldest (a reader wants the latest states)."""
        q = self._events
        if q.full():
            q.get_nowait()
            self._conn_status.events_dropped += 1
        q.put_nowait(event)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


def _describe_close(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "connection closed abnormally (no close frame)"
    reason = f" {frame.reason}" if frame.reason else ""
    return f"connection closed: {frame.code}{reason}"


def _describe_connect_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out opening the connection"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
