"""The Kraken WebSocket v2 book feed: one connection, many pairs, always exact or silent.
(A little over 500 lines on purpose: the connection's reader, processor, writer and guard
tasks share its state; every decision is in :mod:`.subscriptions`.)

:class:`FeedClient` is the asyncio shell around the pure
:class:`~krakenstream.feed.subscriptions.Subscriptions` (which decides what to subscribe, how
to read every answer and when a book must be resynced) and, under it, the pure
:class:`~krakenstream.core.session.BookSession` (parsing, books, checksums). It opens the
socket, moves frames and requests, and reconnects.

One connection runs three tasks:

- the **reader** takes frames off the socket (and hands each to ``on_frame``, for the
  recorder) into a bounded queue. No frame within ``heartbeat_timeout`` seconds makes the
  feed stale: every pair goes ``stale`` and the connection is replaced. **When the queue is
  full** the reader drops the connection and every book is rebuilt from a fresh full book on
  the next one: Kraken's books carry no sequence number, so a skipped frame could only be
  noticed by a checksum later, and a book with a hole must never be processed.
- the **processor** hands the queue, frame by frame, to the state machine and passes on the
  pair state changes it reports.
- the **writer** sends what the state machine says is due, when it says so, and ends the
  connection when it says an answer never came.

Between connections the client waits as :mod:`krakenstream.core.backoff` decides, forever;
every attempt to connect first asks ``gate`` how long to wait for its turn (a pool shares
one budget, so that many connections reconnecting at once stay under the exchange's
per-address limit); the status says ``waiting`` and when the next attempt goes meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import replace
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, WebSocketException

from ..core.backoff import BackoffPolicy, Reason, ReconnectSchedule
from ..core.book import OrderBook
from ..core.events import Event
from ..errors import BackendUnavailable, FeedError, InputError
from ..tasks import report_failure
from .changes import OnStateChange, StateChanges
from .connect import Gate, describe_close, describe_connect_error, open_socket
from .options import FeedOptions
from .status import ConnectionStatus, FeedEvent, PairStatus
from .subscriptions import Subscriptions

log = logging.getLogger(__name__)

OnFrame = Callable[[str], None]
#: called with every non-book event (instrument, status...) after the client has taken it
OnEvent = Callable[[Event], None]


class _Ended(Exception):
    """Internal: why a connection ended (raised by, or recorded for, its tasks)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class _Connection:
    """One open socket's tasks and queue; thrown away when it closes."""

    def __init__(self, ws: ClientConnection, queue_size: int) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | bytes] = asyncio.Queue(queue_size)
        self.wake = asyncio.Event()
        self.ended = asyncio.Event()
        self.end_reason: _Ended | None = None
        self.failure: BaseException | None = None
        #: when the last frame arrived (the loop's clock)
        self.last_arrival = asyncio.get_running_loop().time()

    def end(self, reason: Reason, detail: str) -> None:
        if self.end_reason is None:
            self.end_reason = _Ended(reason, detail)
        self.ended.set()


class FeedClient:
    """Track many pairs' books on one Kraken v2 connection; reconnect forever.

    ``async with FeedClient(options, pairs) as client`` runs it in a task; or
    ``await client.run()`` until ``await client.stop()``. A client runs once: after
    ``stop()`` it stays stopped.

    Hooks: ``on_state_change(event)`` is called synchronously on every pair state change (an
    exception in it is logged, not raised); ``on_frame(text)`` gets every frame as received,
    before processing (an exception in it stops the client and is raised by ``run()``);
    ``on_event(event)`` gets every decoded frame that is not a book frame (the pool reads
    the instrument listing from it; an exception in it is logged). ``clock`` gives the
    wall-clock epoch seconds stamped on statuses and events. ``give_up_after`` failed
    attempts in a row end the run with :class:`BackendUnavailable` (default: never);
    ``event_queue_size`` bounds :meth:`events`.
    """

    def __init__(
        self,
        options: FeedOptions,
        pairs: Iterable[str] = (),
        *,
        on_state_change: OnStateChange | None = None,
        on_frame: OnFrame | None = None,
        on_event: OnEvent | None = None,
        gate: Gate | None = None,
        applying: asyncio.Event | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        give_up_after: int | None = None,
        event_queue_size: int = 1000,
        name: str = "",
    ) -> None:
        if event_queue_size < 1:
            raise InputError("event_queue_size must be >= 1")
        if give_up_after is not None and give_up_after < 1:
            raise InputError("give_up_after must be None (never) or >= 1")
        self.options = options
        self.url = options.url
        self.name = name
        self.give_up_after = give_up_after
        self.on_state_change = on_state_change
        self.on_frame = on_frame
        self.on_event = on_event
        self._gate = gate
        #: set while frames may be applied to the books (see FeedPool.held); None: always
        self._applying = applying
        self._clock = clock
        self._schedule = ReconnectSchedule(
            BackoffPolicy(initial=options.backoff_initial, maximum=options.backoff_max),
            rng or random.Random(),
        )
        self._subs = Subscriptions(options, pairs, wall=clock())
        self._conn_status = ConnectionStatus(url=options.url, name=name)
        self._conn: _Connection | None = None
        self._changes = StateChanges(event_queue_size)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._run_task: asyncio.Task[object] | None = None
        self._running = False
        self._finished = False

    # -- reading the state -------------------------------------------------------------

    @property
    def pairs(self) -> tuple[str, ...]:
        """The pairs tracked (including those in ``error``), in the order added."""
        return tuple(self._subs.pairs)

    def status(self) -> dict[str, PairStatus]:
        """A copy of every tracked pair's status."""
        return self._subs.status()

    def connection_status(self) -> ConnectionStatus:
        subs = self._subs
        return replace(self._conn_status, system=subs.system, bad_frames=subs.bad_frames,
                       rate_limited=subs.rate_limited, pairs=len(subs.pairs),
                       events_dropped=self._changes.dropped,
                       connection_id=subs.connection_id if self._conn is not None else None)

    def book(self, pair: str) -> OrderBook | None:
        """The pair's book if it may be used now (live, verified, not crossed), else None.

        This is the live object: read it without awaiting in between, or copy what you need
        (e.g. with :meth:`~krakenstream.core.snapshot.Snapshot.from_book`).
        """
        return self._subs.book(pair)

    @property
    def idle(self) -> bool:
        """Connected, every request answered and nothing left to send."""
        return self._conn is not None and self._subs.idle

    async def events(self) -> AsyncIterator[FeedEvent]:
        """State changes as they happen, until the client stops (one reader at a time).

        The buffer holds ``event_queue_size`` events; when nobody reads, the oldest are
        dropped and counted in ``connection_status().events_dropped``.
        """
        async for ev in self._changes:
            yield ev

    async def wait_live(self, pairs: Iterable[str] | None = None) -> None:
        """Wait until every given pair (default: every tracked pair not in ``error``) is
        ``live``. Bound it with ``asyncio.timeout(...)``.

        Raises :class:`~krakenstream.errors.FeedError` if a pair asked for by name is in
        ``error`` (with the exchange's message), or if the client stops meanwhile.
        """
        wanted = None if pairs is None else list(pairs)
        while True:
            if self._finished:
                raise FeedError("the feed client stopped before the books were live")
            if self._subs.all_live(wanted):
                return
            await self._changes.wait()

    # -- changing the pairs ------------------------------------------------------------

    async def add_pairs(self, pairs: Iterable[str]) -> list[str]:
        """Track more pairs; subscribed on the open connection at once (no reconnect).
        Returns the pairs that were not tracked before.

        A pair already tracked but refused before (``error``) is tried again.
        """
        return self.add_pairs_nowait(pairs)

    async def remove_pairs(self, pairs: Iterable[str]) -> list[str]:
        """Stop tracking pairs; unsubscribed on the open connection (no reconnect).
        Returns the pairs that were tracked."""
        return self.remove_pairs_nowait(pairs)

    def add_pairs_nowait(self, pairs: Iterable[str]) -> list[str]:
        """:meth:`add_pairs` from synchronous code (it never waits)."""
        added = self._subs.add_pairs(pairs, self._clock())
        self._changed_subscriptions()
        return added

    def remove_pairs_nowait(self, pairs: Iterable[str]) -> list[str]:
        """:meth:`remove_pairs` from synchronous code (it never waits)."""
        removed = self._subs.remove_pairs(pairs)
        self._changed_subscriptions()
        return removed

    @property
    def pair_count(self) -> int:
        return len(self._subs.pairs)

    def all_live(self, pairs: Iterable[str] | None = None) -> bool:
        """Whether every given pair (default: every pair not in ``error``) is ``live`` now;
        :class:`FeedError` if a pair named is in ``error``."""
        return self._subs.all_live(pairs)

    def _changed_subscriptions(self) -> None:
        conn = self._conn
        if conn is not None:
            conn.wake.set()
        self._changes.notify()

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

    async def stop(self, *, stale: str | None = None) -> None:
        """Close the connection and end :meth:`run`; raises what ended the run, if anything.

        With ``stale`` (a reason) every pair not in ``error`` is left ``stale``, not as it
        was: a pool stopped by another connection's failure must not leave pairs "live".
        """
        self._stop.set()
        conn = self._conn
        if conn is not None:
            conn.ended.set()
        task = self._task or self._run_task
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait({task})
        if stale is not None:
            self._subs.disconnected(stale, self._clock())
            self._dispatch()
        if task is not None and task is not asyncio.current_task():
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
        try:
            await self._connect_forever()
        finally:
            self._conn = None
            self._conn_status.connected = False
            self._conn_status.state = "stopped"
            self._finished = True
            self._changes.close()

    async def _connect_forever(self) -> None:
        loop = asyncio.get_running_loop()
        status = self._conn_status
        failures = 0
        while not self._stop.is_set():
            await self._wait_turn()
            if self._stop.is_set():
                return
            status.state = "connecting"
            try:
                ws = await open_socket(self.url, open_timeout=self.options.open_timeout,
                                       stop=self._stop)
                if ws is None:  # stopped while connecting
                    return
            except (OSError, TimeoutError, WebSocketException) as exc:
                failures += 1
                detail = describe_connect_error(exc)
                status.connect_failures += 1
                status.last_error = detail
                if self.give_up_after is not None and failures >= self.give_up_after:
                    raise BackendUnavailable(
                        f"cannot connect to {self.url}: {detail}",
                        hint="check the URL (kraken.url / --url) and the network",
                    ) from exc
                reason = Reason.MAINTENANCE if self._subs.system == "maintenance" \
                    else Reason.CONNECT_FAILED
                delay = self._schedule.failed(reason)
                log.warning("feed connect failed url=%s error=%r retry_in=%.2fs%s", self.url,
                            detail, delay, self._tag())
                await self._sleep(delay)
                continue
            failures = 0
            opened = loop.time()
            ended = await self._serve(ws)
            self._schedule.connected_for(loop.time() - opened)
            if self._stop.is_set():
                return
            reason = Reason.MAINTENANCE if self._subs.system == "maintenance" else ended.reason
            delay = self._schedule.failed(reason)
            log.warning("feed connection lost url=%s reason=%s detail=%r retry_in=%.2fs%s",
                        self.url, ended.reason.value, ended.detail, delay, self._tag())
            await self._sleep(delay)

    def _tag(self) -> str:
        return f" pool_connection={self.name}" if self.name else ""

    async def _sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if stopped meanwhile (said in the status)."""
        if delay <= 0:
            return
        st = self._conn_status
        st.state, st.retry_at, st.retry_in = "waiting", self._clock() + delay, delay
        try:
            async with asyncio.timeout(delay):
                await self._stop.wait()
        except TimeoutError:
            pass
        finally:
            st.retry_at = st.retry_in = None

    async def _wait_turn(self) -> None:
        """Wait for this attempt's turn in the gate's budget (said in the status)."""
        delay = 0.0 if self._gate is None else self._gate()
        if delay > 0.05:
            log.info("feed waiting %.1f s for a connection slot (connection budget)%s",
                     delay, self._tag())
        await self._sleep(delay)

    async def _serve(self, ws: ClientConnection) -> _Ended:
        """Run one connection's tasks until it ends; returns why."""
        loop = asyncio.get_running_loop()
        st = self._conn_status
        st.connected, st.state = True, "connected"
        st.connected_since, st.last_frame_time = self._clock(), None
        self._subs.connected(loop.time(), self._clock())
        if self._subs.connections > 1:
            st.reconnects += 1
        log.info("feed connected url=%s connection=%d%s", self.url, self._subs.connections,
                 self._tag())
        conn = _Connection(ws, self.options.queue_size)
        self._conn = conn
        self._changes.notify()
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
        # a failure ends the client too: no pair may still claim to be live after it
        self._subs.disconnected(ended.detail, self._clock(),
                                stale=conn.failure is not None or not self._stop.is_set())
        self._dispatch()
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
            conn.end(Reason.DROPPED, describe_close(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug, or an on_frame hook that failed: stop the client
            conn.failure = exc
            conn.end(Reason.PROTOCOL, f"{type(exc).__name__}: {exc}")
        else:
            conn.end(Reason.DROPPED, "task ended")

    # -- the three tasks ---------------------------------------------------------------

    async def _read(self, conn: _Connection) -> None:
        timeout, loop = self.options.heartbeat_timeout, asyncio.get_running_loop()
        last = conn.last_arrival
        while True:
            # one timer per heartbeat timeout, not one per frame (a timer per recv() was a
            # seventh of the feed's CPU): when it fires, frames that came meanwhile re-arm it
            # at the last one + the timeout; recv() is safe to cancel (nothing is lost)
            try:
                async with asyncio.timeout_at(last + timeout):
                    await self._read_frames(conn)
            except TimeoutError:
                pass
            last = conn.last_arrival
            if loop.time() - last >= timeout:
                raise _Ended(Reason.STALE, f"no frame for {timeout:g} s")

    async def _read_frames(self, conn: _Connection) -> None:
        """Frames off the socket into the queue, until something raises."""
        ws, queue, loop_time = conn.ws, conn.queue, asyncio.get_running_loop().time
        on_frame, clock, status = self.on_frame, self._clock, self._conn_status
        while True:
            msg = await ws.recv()
            conn.last_arrival = loop_time()
            status.last_frame_time = clock()
            if on_frame is not None:
                on_frame(msg if isinstance(msg, str) else msg.decode("utf-8", "replace"))
            try:
                queue.put_nowait(msg)
            except asyncio.QueueFull:
                status.overflows += 1
                log.warning(
                    "feed queue full size=%d overflows=%d action=reconnect-and-resync-all%s",
                    queue.maxsize, status.overflows, self._tag(),
                )
                raise _Ended(
                    Reason.OVERFLOW, f"frame queue full ({queue.maxsize} frames)"
                ) from None

    async def _process(self, conn: _Connection) -> None:
        queue, subs, clock = conn.queue, self._subs, self._clock
        loop_time = asyncio.get_running_loop().time
        applying = self._applying
        while True:
            frame = await queue.get()
            if applying is not None and not applying.is_set():
                await applying.wait()  # the books are being read: this frame waits
            dirty = subs.dirty
            try:
                event = subs.receive(frame, loop_time(), clock())
            except Exception:
                # a bug, not bad input (the core never raises on input); a book may be half
                # applied, so every book is rebuilt from a fresh full book on a new connection
                subs.bad_frames += 1
                log.exception("feed failed to process a frame; reconnecting to resync all")
                raise _Ended(Reason.PROTOCOL, "internal error while processing a frame") from None
            if subs.has_events:
                self._dispatch()
            if event is not None or (subs.dirty and not dirty):
                conn.wake.set()  # an answer, a void book...: the writer has work
                if event is not None and self.on_event is not None:
                    try:
                        self.on_event(event)
                    except Exception:
                        log.exception("feed on_event hook failed")

    async def _write(self, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        subs, ws = self._subs, conn.ws
        tick = min(1.0, self.options.heartbeat_timeout / 4)
        while True:
            conn.wake.clear()
            now = loop.time()
            for req in subs.requests_to_send(now, self._clock()):
                await ws.send(req.text())
            if subs.has_events or subs.idle:
                self._dispatch()  # and wake whoever waits for idle
            why = subs.expired(now)
            if why is not None:
                raise _Ended(Reason.PROTOCOL, why)
            deadline = subs.next_deadline(now)
            wait = tick if deadline is None else min(tick, deadline - loop.time())
            if wait <= 0:
                await asyncio.sleep(0)  # let the reader and the processor in
                continue
            try:
                async with asyncio.timeout(wait):
                    await conn.wake.wait()
            except TimeoutError:
                pass

    def _dispatch(self) -> None:
        """Hand the state machine's pair state changes on (and wake whoever waits)."""
        self._changes.publish(self._subs.events_received(), self.on_state_change)
