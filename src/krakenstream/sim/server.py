"""The simulated exchange on the wire: Kraken WebSocket v2 over ``websockets`` on loopback.

Only scheme, host and port differ from Kraken's URL (the path is ``/v2``), so the feed client
runs its real code path against it. One market loop steps every subscribed pair ``rate`` times
a second on average (at irregular times) and hands each subscriber its own frame (see
:class:`~.market.BookStream`); one writer task per connection drains that connection's bounded
outbound queue. A client that cannot keep up (the queue is full) is disconnected, as an
exchange would: a book with holes must never be served.

Faults, on command (:meth:`SimServer.fault`, or the private ``x-sim-fault`` method over the
socket) or at random with a seed (``fault_rate``):

- ``drop``: the TCP connection is aborted, no close frame (or, given a ``code``, closed
  cleanly with it: 1001, 1011...);
- ``corrupt``: one update of one symbol carries a wrong checksum;
- ``stall``: nothing at all (frames, heartbeats) for some seconds; frames are held, then sent;
- ``maintenance``: ``status`` says ``maintenance``, the market stops for some seconds
  (optionally the connections are closed), then ``online`` again.

With ``replay`` it serves a recorded file instead of the random market: each subscribed
symbol's book frames, as recorded, paced by their timestamps (``speed`` times faster).

Two private methods, which Kraken does not have, let another process drive the simulator:
``{"method":"x-sim-fault","params":{"kind":"drop"}}`` (also ``symbol``, ``seconds``, ``close``,
``code``, and ``scope``: ``others`` by default, ``self`` or ``all``) and
``{"method":"x-sim-book","params":{"symbol":"ETH/USD","depth":10}}``, which answers with the
simulator's own book as scaled integers, and ``{"method":"x-sim-pause","params":{"paused":
true}}`` (``false`` to resume), so that a test in another process can compare books.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, get_args

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..config import VALID_DEPTHS
from ..core.events import Level, Precision
from ..errors import InputError, NotFound
from .market import DEFAULT_PAIRS, BookStream, Market, PairSpec, guess_spec, synthetic_specs
from .replay import Recording, corrupt_checksum, load_recording

log = logging.getLogger(__name__)

FaultKind = Literal["drop", "corrupt", "stall", "maintenance"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)

PATH = "/v2"
API_VERSION = "v2"
VERSION = "2.0.10"
#: frames queued for one connection before it counts as a slow consumer and is cut off
OUT_QUEUE_LIMIT = 50_000
#: market ticks a second; each subscribed pair steps on a tick with probability rate / TICK_HZ
TICK_HZ = 50.0
#: a replay waits while this many frames are queued for its connection
REPLAY_BACKLOG = 1000
#: close code when the server shuts down or goes into maintenance ("going away")
GOING_AWAY = 1001


def iso_now() -> str:
    """Kraken's timestamp form: ISO 8601, microseconds, ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class SimStats:
    """What the simulator did; tests and ``kms sim`` read it."""

    #: connections open now, and ever accepted
    connections: int = 0
    connections_total: int = 0
    frames_sent: int = 0
    book_frames: int = 0
    heartbeats: int = 0
    #: connections cut off because their outbound queue was full
    slow_consumers: int = 0
    #: requests that got an error answer
    errors: int = 0
    #: faults injected, by kind
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_KINDS, 0))


@dataclass(frozen=True, slots=True)
class _Close:
    """A queue item: close the connection once everything before it was sent."""

    code: int
    reason: str


class _Conn:
    """One client connection: its subscriptions and its outbound queue."""

    __slots__ = (
        "id", "ws", "rng", "out", "wake", "room", "busy", "writer", "streams", "depths", "replays",
        "instrument", "corrupt", "stalled_until", "last_sent",
    )

    def __init__(self, cid: int, ws: ServerConnection, rng: random.Random, now: float) -> None:
        self.id = cid
        self.ws = ws
        self.rng = rng
        self.out: deque[bytes | _Close] = deque()
        self.wake = asyncio.Event()
        #: set while the queue has room for a replay to add frames
        self.room = asyncio.Event()
        #: the writer holds a frame it has not finished sending
        self.busy = False
        self.writer: asyncio.Task[None] | None = None
        self.streams: dict[str, BookStream] = {}
        #: subscribed book symbols and their depths (both modes)
        self.depths: dict[str, int] = {}
        self.replays: dict[str, asyncio.Task[None]] = {}
        self.instrument = False
        #: symbols whose next update gets a wrong checksum
        self.corrupt: set[str] = set()
        self.stalled_until = 0.0
        self.last_sent = now

    @property
    def subscribed(self) -> bool:
        return self.instrument or bool(self.depths)


class SimServer:
    """A local Kraken v2 exchange. Use ``async with SimServer() as sim:`` then ``sim.url``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        pairs: Sequence[str | PairSpec] | None = None,
        synthetic: int = 0,
        rate: float = 10.0,
        seed: int | str | None = None,
        fault_rate: float = 0.0,
        fault_kinds: Iterable[FaultKind] = FAULT_KINDS,
        replay: str | Path | None = None,
        speed: float = 1.0,
        heartbeat_interval: float = 1.0,
        quirks: bool = True,
    ) -> None:
        """``pairs`` are added to :data:`~.market.DEFAULT_PAIRS` (unknown ones get guessed
        precisions); ``synthetic`` adds that many ``SYNnnnn/USD`` pairs. ``rate`` is update
        frames a second per subscribed pair; ``fault_rate`` random faults a second (seeded by
        ``seed``); ``replay`` serves a recorded file instead (``speed`` times real time,
        0 = as fast as possible). ``quirks=False`` turns off the extra-level and duplicate-price
        quirks in updates."""
        if rate <= 0:
            raise InputError(f"rate must be positive, not {rate}")
        if fault_rate < 0:
            raise InputError(f"fault_rate must not be negative, not {fault_rate}")
        kinds = tuple(fault_kinds)
        for kind in kinds:
            if kind not in FAULT_KINDS:
                raise InputError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        self.host = host
        self.port = port
        self.rate = rate
        self.seed = seed
        self.fault_rate = fault_rate
        self.fault_kinds = kinds or FAULT_KINDS
        self.speed = speed
        self.heartbeat_interval = heartbeat_interval
        self.quirks = quirks
        self.replay_path = Path(replay) if replay is not None else None
        self.stats = SimStats()
        specs: list[PairSpec] = list(DEFAULT_PAIRS)
        for p in pairs or ():
            specs.append(p if isinstance(p, PairSpec) else guess_spec(p))
        specs.extend(synthetic_specs(synthetic, seed))
        self.market = Market(specs, seed)
        self._instrument_data = self.market.instrument_data()
        self.recording: Recording | None = None
        self._rng = random.Random(f"{seed}:server") if seed is not None else random.Random()
        self._fault_rng = random.Random(f"{seed}:faults") if seed is not None else random.Random()
        self._tick_rng = random.Random(f"{seed}:ticks") if seed is not None else random.Random()
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._conns: dict[int, _Conn] = {}
        self._conn_count = 0
        #: symbol -> connection id -> (connection, stream): who gets each pair's steps
        self._subs: dict[str, dict[int, tuple[_Conn, BookStream]]] = {}
        self._paused = False
        self._maintenance = False
        self._maintenance_task: asyncio.Task[None] | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{PATH}"

    @property
    def symbols(self) -> list[str]:
        """Every symbol this server serves."""
        if self.recording is not None:
            return sorted(self.recording.frames)
        return list(self.market)

    async def start(self) -> None:
        """Listen (``port`` 0 picks a free one; :attr:`port` and :attr:`url` then tell it)."""
        if self._server is not None:
            raise InputError("the simulator is already running")
        if self.replay_path is not None:
            self.recording = await asyncio.to_thread(load_recording, self.replay_path)
        try:
            self._server = await serve(
                self._serve_connection,
                self.host,
                self.port,
                process_request=self._check_path,
                compression=None,
                max_size=2**20,
            )
        except OSError as exc:
            raise InputError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                hint="choose another --port (0 picks a free one)",
            ) from exc
        for sock in self._server.sockets:
            self.port = int(sock.getsockname()[1])
            break
        if self.recording is None:
            self._tasks.append(asyncio.create_task(self._market_loop(), name="sim-market"))
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="sim-heartbeat"))
        if self.fault_rate > 0:
            self._tasks.append(asyncio.create_task(self._fault_loop(), name="sim-faults"))
        log.info("sim listening url=%s pairs=%d rate=%s replay=%s",
                 self.url, len(self.symbols), self.rate, self.replay_path)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        if self._maintenance_task is not None:
            tasks.append(self._maintenance_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._server is not None:
            self._server.close(close_connections=True, code=GOING_AWAY, reason="server stopping")
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- what tests look at ------------------------------------------------------------

    def book_view(self, symbol: str, depth: int) -> tuple[list[Level], list[Level]]:
        """The sim's own top ``depth`` levels as scaled ints, best first: ``(bids, asks)``.

        Compare a client's book with this after :meth:`pause` (nothing moves then)."""
        if symbol not in self.market or self.recording is not None:
            raise NotFound(f"the simulator has no live book for {symbol}")
        return self.market.book(symbol).top(depth)

    def precision(self, symbol: str) -> Precision:
        """The pair's price and qty precision, as its instrument frame gives them."""
        known = self.market.specs if self.recording is None else self.recording.precisions
        if symbol not in known:
            raise NotFound(f"the simulator does not list {symbol}")
        if self.recording is not None:
            return self.recording.precisions[symbol]
        return self.market.precision(symbol)

    def connection_ids(self) -> list[int]:
        """The ``connection_id`` of each open connection (as in its status frame)."""
        return list(self._conns)

    def subscriptions(self) -> dict[str, int]:
        """How many connections are subscribed to each symbol's book now."""
        out: dict[str, int] = {}
        for conn in self._conns.values():
            for symbol in conn.depths:
                out[symbol] = out.get(symbol, 0) + 1
        return out

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def in_maintenance(self) -> bool:
        return self._maintenance

    async def pause(self, drain_within: float = 2.0) -> None:
        """Stop market updates (heartbeats go on) and wait until queued frames are sent."""
        self._set_paused(True)
        await self.drain(drain_within)

    async def resume(self) -> None:
        self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        self._paused = paused
        if paused:
            self._flowing.clear()
        elif not self._maintenance:
            self._flowing.set()

    async def drain(self, within: float = 2.0) -> bool:
        """Wait until every (unstalled) connection's queue is sent; False if that takes
        longer than ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            now = loop.time()
            if not any((c.out or c.busy) and c.stalled_until <= now
                       for c in self._conns.values()):
                return True
            await asyncio.sleep(0.005)
        return False

    # -- faults ------------------------------------------------------------------------

    async def fault(
        self,
        kind: FaultKind,
        *,
        symbol: str | None = None,
        seconds: float = 2.0,
        close: bool = False,
        code: int | None = None,
        connection: int | None = None,
    ) -> int:
        """Inject a fault into every connection (or the one with ``connection`` id).

        ``symbol`` picks the pair to corrupt (default: one the connection is subscribed to);
        ``seconds`` is how long a stall or maintenance lasts; ``close`` makes maintenance
        also close the connections; ``code`` makes a drop a clean close with that code
        (1001, 1011...) instead of an aborted TCP connection. Returns how many connections
        it touched."""
        if kind not in FAULT_KINDS:
            raise InputError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if connection is not None:
            if connection not in self._conns:
                raise NotFound(f"no connection with id {connection}")
            targets = [self._conns[connection]]
        else:
            targets = list(self._conns.values())
        return self._fault(kind, targets, symbol, seconds, close, code)

    def _fault(
        self, kind: FaultKind, targets: list[_Conn], symbol: str | None, seconds: float,
        close: bool, code: int | None = None,
    ) -> int:
        self.stats.faults[kind] += 1
        now = asyncio.get_running_loop().time()
        touched = 0
        if kind == "maintenance":
            self._start_maintenance(seconds, close)
            return len(self._conns)
        for conn in targets:
            if kind == "drop":
                if code is None:
                    conn.ws.transport.abort()
                else:
                    # close now: what was queued is lost, as on a real cut
                    conn.out.clear()
                    conn.stalled_until = 0.0
                    self._push(conn, _Close(code, "dropped by the simulator"))
                touched += 1
            elif kind == "corrupt":
                sym = symbol
                if sym is None and conn.depths:
                    sym = self._fault_rng.choice(sorted(conn.depths))
                if sym is not None and sym in conn.depths:
                    conn.corrupt.add(sym)
                    touched += 1
            elif kind == "stall":
                conn.stalled_until = now + seconds
                touched += 1
        log.info("sim fault kind=%s connections=%d symbol=%s seconds=%s",
                 kind, touched, symbol, seconds)
        return touched

    def _start_maintenance(self, seconds: float, close: bool) -> None:
        if self._maintenance_task is not None:
            self._maintenance_task.cancel()
        self._maintenance = True
        self._flowing.clear()
        self._broadcast_status("maintenance")
        if close:
            for conn in list(self._conns.values()):
                self._push(conn, _Close(GOING_AWAY, "maintenance"))
        log.info("sim maintenance seconds=%s close=%s", seconds, close)
        self._maintenance_task = asyncio.create_task(self._end_maintenance(seconds))

    async def _end_maintenance(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._maintenance = False
        self._maintenance_task = None
        if not self._paused:
            self._flowing.set()
        self._broadcast_status("online")
        log.info("sim maintenance over")

    def _broadcast_status(self, system: str) -> None:
        for conn in list(self._conns.values()):
            self._push(conn, self._status_frame(conn.id, system))

    async def _fault_loop(self) -> None:
        rng = self._fault_rng
        while True:
            await asyncio.sleep(rng.expovariate(self.fault_rate))
            conns = [c for _, c in sorted(self._conns.items()) if c.depths]
            if not conns:
                continue
            kind = rng.choice(self.fault_kinds)
            seconds = rng.uniform(0.5, 2.5)
            if kind == "maintenance":
                self._fault(kind, conns, None, seconds, close=False)
            else:
                self._fault(kind, [rng.choice(conns)], None, seconds, close=False)

    # -- connections -------------------------------------------------------------------

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, f"Not Found: use {PATH}\n")
        return None

    async def _serve_connection(self, ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        self._conn_count += 1
        cid = self._rng.getrandbits(64) | (1 << 63)  # like Kraken's: beyond int64
        rng = (random.Random(f"{self.seed}:conn:{self._conn_count}") if self.seed is not None
               else random.Random())
        conn = _Conn(cid, ws, rng, loop.time())
        self._conns[cid] = conn
        self.stats.connections += 1
        self.stats.connections_total += 1
        conn.writer = asyncio.create_task(self._write(conn), name=f"sim-writer-{cid}")
        self._push(conn, self._status_frame(cid, "maintenance" if self._maintenance else "online"))
        try:
            async for message in ws:
                self._on_request(conn, message)
        except ConnectionClosed:
            pass
        finally:
            self._forget(conn)
            pending = [t for t in (conn.writer, *conn.replays.values()) if t is not None]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _forget(self, conn: _Conn) -> None:
        self._conns.pop(conn.id, None)
        self.stats.connections -= 1
        for symbol in conn.streams:
            self._unindex(symbol, conn)
        conn.streams.clear()
        conn.out.clear()

    def _unindex(self, symbol: str, conn: _Conn) -> None:
        subs = self._subs.get(symbol)
        if subs is not None:
            subs.pop(conn.id, None)
            if not subs:
                del self._subs[symbol]

    def _push(self, conn: _Conn, item: bytes | _Close) -> None:
        out = conn.out
        if len(out) >= OUT_QUEUE_LIMIT:
            if conn.id in self._conns:
                self.stats.slow_consumers += 1
                log.warning("sim slow consumer connection=%d queued=%d: disconnecting",
                            conn.id, len(out))
                out.clear()
                conn.ws.transport.abort()
            return
        out.append(item)
        conn.wake.set()

    async def _write(self, conn: _Conn) -> None:
        """Drain one connection's queue; a stall holds the frames back."""
        loop = asyncio.get_running_loop()
        ws, out, stats = conn.ws, conn.out, self.stats
        try:
            while True:
                if not out:
                    conn.wake.clear()
                    await conn.wake.wait()
                    continue
                delay = conn.stalled_until - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
                item = out.popleft()
                if len(out) < REPLAY_BACKLOG // 2:
                    conn.room.set()
                conn.busy = True
                if isinstance(item, _Close):
                    await ws.close(item.code, item.reason)
                    return
                await ws.send(item, text=True)
                conn.busy = False
                conn.last_sent = loop.time()
                stats.frames_sent += 1
        except ConnectionClosed:
            pass
        finally:
            conn.busy = False

    # -- requests ----------------------------------------------------------------------

    def _on_request(self, conn: _Conn, message: str | bytes) -> None:
        time_in = iso_now()
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            self._error(conn, None, None, "Malformed request", time_in)
            return
        if type(req) is not dict:
            self._error(conn, None, None, "Malformed request", time_in)
            return
        method = req.get("method")
        req_id = req.get("req_id")
        params = req.get("params")
        if method == "ping":
            self._answer(conn, {"method": "pong"}, req_id, time_in)
        elif method in ("subscribe", "unsubscribe"):
            if type(params) is not dict:
                self._error(conn, method, req_id, "Params field must be an object", time_in)
                return
            self._on_subscription(conn, method, req_id, params, time_in)
        elif method == "x-sim-fault":
            self._on_control_fault(conn, req_id, params, time_in)
        elif method == "x-sim-book":
            self._on_control_book(conn, req_id, params, time_in)
        elif method == "x-sim-pause":
            self._on_control_pause(conn, req_id, params, time_in)
        else:
            self._error(conn, method if type(method) is str else None, req_id,
                        f"Unsupported method {method}", time_in)

    def _on_subscription(
        self, conn: _Conn, method: str, req_id: Any, params: dict[str, Any], time_in: str
    ) -> None:
        channel = params.get("channel")
        subscribe = method == "subscribe"
        if channel == "book":
            self._on_book(conn, subscribe, req_id, params, time_in)
        elif channel == "instrument":
            conn.instrument = subscribe
            result: dict[str, Any] = {"channel": "instrument"}
            if subscribe:
                result["snapshot"] = params.get("snapshot", True) is not False
            self._answer(conn, {"method": method, "result": result, "success": True},
                         req_id, time_in)
            if subscribe and result["snapshot"]:
                self._push(conn, self._instrument_frame())
        elif channel in ("heartbeat", "status"):
            self._answer(conn, {"method": method, "result": {"channel": channel},
                                "success": True}, req_id, time_in)
        else:
            self._error(conn, method, req_id, f"Channel {channel} not supported", time_in)

    def _on_book(
        self, conn: _Conn, subscribe: bool, req_id: Any, params: dict[str, Any], time_in: str
    ) -> None:
        method = "subscribe" if subscribe else "unsubscribe"
        symbols = params.get("symbol")
        if type(symbols) is not list:
            self._error(conn, method, req_id, "Symbol field must be an array", time_in)
            return
        depth = params.get("depth", 10)
        snapshot = params.get("snapshot", True) is not False
        depth_ok = type(depth) is int and depth in VALID_DEPTHS
        rec = self.recording
        for symbol in symbols:
            if type(symbol) is not str or not (
                symbol in self.market if rec is None else symbol in rec.frames
            ):
                self._error(conn, method, req_id, f"Currency pair not supported {symbol}",
                            time_in, symbol=symbol)
                continue
            if not depth_ok or (rec is not None and depth != rec.depths[symbol]):
                self._error(conn, method, req_id, "Subscription depth not supported",
                            time_in, symbol=symbol)
                continue
            if not subscribe:
                if conn.depths.get(symbol) != depth:
                    # Kraken names this error "subscribe": clients must match on req_id
                    self._error(conn, "subscribe", req_id, "Subscription Not Found",
                                time_in, symbol=symbol)
                    continue
                self._book_unsubscribe(conn, symbol)
                self._answer(conn, {"method": method, "result": {
                    "channel": "book", "depth": depth, "symbol": symbol}, "success": True},
                    req_id, time_in)
                continue
            if symbol in conn.depths:
                self._error(conn, method, req_id, "Already subscribed", time_in, symbol=symbol)
                continue
            self._answer(conn, {"method": method, "result": {
                "channel": "book", "depth": depth, "snapshot": snapshot, "symbol": symbol},
                "success": True}, req_id, time_in)
            self._book_subscribe(conn, symbol, depth, snapshot)

    def _book_subscribe(self, conn: _Conn, symbol: str, depth: int, snapshot: bool) -> None:
        conn.depths[symbol] = depth
        if self.recording is not None:
            conn.replays[symbol] = asyncio.create_task(self._replay(conn, symbol))
            return
        if self.quirks:
            stream = BookStream(self.market.book(symbol), depth, conn.rng)
        else:
            stream = BookStream(self.market.book(symbol), depth, conn.rng,
                                extra_rate=0.0, duplicate_rate=0.0)
        frame = stream.snapshot(iso_now())
        if snapshot:
            self._push(conn, orjson.dumps(frame))
            self.stats.book_frames += 1
        conn.streams[symbol] = stream
        self._subs.setdefault(symbol, {})[conn.id] = (conn, stream)

    def _book_unsubscribe(self, conn: _Conn, symbol: str) -> None:
        conn.depths.pop(symbol, None)
        conn.corrupt.discard(symbol)
        if conn.streams.pop(symbol, None) is not None:
            self._unindex(symbol, conn)
        task = conn.replays.pop(symbol, None)
        if task is not None:
            task.cancel()

    def _on_control_fault(self, conn: _Conn, req_id: Any, params: Any, time_in: str) -> None:
        """``{"method":"x-sim-fault","params":{"kind":"drop"}}``: a fault from another
        process. ``scope`` is ``others`` (default: every connection but this one), ``self``
        or ``all``; ``symbol``, ``seconds``, ``close`` and ``code`` as in
        :meth:`SimServer.fault`."""
        params = params if type(params) is dict else {}
        kind = params.get("kind")
        scope = params.get("scope", "others")
        seconds = params.get("seconds", 2.0)
        symbol = params.get("symbol")
        code = params.get("code")
        valid = (
            kind in FAULT_KINDS
            and scope in ("others", "self", "all")
            and type(seconds) in (int, float) and 0 <= seconds <= 3600
            and (symbol is None or type(symbol) is str)
            and (code is None or (type(code) is int and 1000 <= code <= 4999))
        )
        if not valid:
            self._error(conn, "x-sim-fault", req_id,
                        f"bad fault: kind one of {', '.join(FAULT_KINDS)}, scope one of "
                        "others/self/all, seconds 0..3600, code 1000..4999", time_in)
            return
        if scope == "self":
            targets = [conn]
        elif scope == "all":
            targets = list(self._conns.values())
        else:
            targets = [c for c in self._conns.values() if c is not conn]
        self._answer(conn, {"method": "x-sim-fault", "result": {"kind": kind, "scope": scope},
                            "success": True}, req_id, time_in)
        self._fault(kind, targets, symbol, float(seconds), bool(params.get("close", False)),
                    code)

    def _on_control_book(self, conn: _Conn, req_id: Any, params: Any, time_in: str) -> None:
        """``{"method":"x-sim-book","params":{"symbol":"ETH/USD","depth":10}}``: the sim's
        own book as scaled ints, for tests that run the sim in another process."""
        params = params if type(params) is dict else {}
        symbol, depth = params.get("symbol"), params.get("depth", 10)
        if type(symbol) is not str or type(depth) is not int or depth < 1:
            self._error(conn, "x-sim-book", req_id, "bad request: symbol and depth", time_in)
            return
        try:
            bids, asks = self.book_view(symbol, depth)
            prec = self.precision(symbol)
        except NotFound as exc:
            self._error(conn, "x-sim-book", req_id, str(exc), time_in, symbol=symbol)
            return
        self._answer(conn, {"method": "x-sim-book", "success": True, "result": {
            "symbol": symbol, "depth": depth, "price_precision": prec.price,
            "qty_precision": prec.qty, "paused": self._paused,
            "bids": [list(lv) for lv in bids], "asks": [list(lv) for lv in asks],
        }}, req_id, time_in)

    def _on_control_pause(self, conn: _Conn, req_id: Any, params: Any, time_in: str) -> None:
        """``{"method":"x-sim-pause","params":{"paused":true}}``: freeze (or thaw) the market
        from another process; heartbeats go on. Frames already queued are still sent."""
        params = params if type(params) is dict else {}
        paused = params.get("paused", True)
        if type(paused) is not bool:
            self._error(conn, "x-sim-pause", req_id, "bad request: paused is a boolean", time_in)
            return
        self._set_paused(paused)
        self._answer(conn, {"method": "x-sim-pause", "result": {"paused": paused},
                            "success": True}, req_id, time_in)

    def _answer(self, conn: _Conn, body: dict[str, Any], req_id: Any, time_in: str) -> None:
        if req_id is not None:
            body["req_id"] = req_id
        body["time_in"] = time_in
        body["time_out"] = iso_now()
        self._push(conn, orjson.dumps(body))

    def _error(
        self, conn: _Conn, method: str | None, req_id: Any, error: str, time_in: str,
        *, symbol: Any = None,
    ) -> None:
        self.stats.errors += 1
        body: dict[str, Any] = {"error": error, "success": False}
        if method is not None:
            body["method"] = method
        if symbol is not None:
            body["symbol"] = symbol
        self._answer(conn, body, req_id, time_in)

    # -- frames ------------------------------------------------------------------------

    def _status_frame(self, cid: int, system: str) -> bytes:
        return orjson.dumps({"channel": "status", "type": "update", "data": [{
            "api_version": API_VERSION, "connection_id": cid, "system": system,
            "version": VERSION,
        }]})

    def _instrument_frame(self) -> bytes:
        if self.recording is not None:
            return self.recording.instrument
        return orjson.dumps({"channel": "instrument", "type": "snapshot",
                             "data": self._instrument_data})

    async def _market_loop(self) -> None:
        """Tick ``TICK_HZ`` times a second; never tries to catch up after falling behind."""
        loop = asyncio.get_running_loop()
        tick_hz = max(TICK_HZ, self.rate)
        period = 1.0 / tick_hz
        per_tick = self.rate / tick_hz
        next_at = loop.time()
        warned_at = -1e9
        while True:
            next_at += period
            if self._flowing.is_set():
                self._step_all(per_tick)
            delay = next_at - loop.time()
            if delay < 0:
                if loop.time() - warned_at > 10.0:
                    warned_at = loop.time()
                    log.warning("sim market loop fell %.3fs behind (CPU busy); not catching up",
                                -delay)
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(delay)

    def _step_all(self, per_tick: float) -> None:
        """One market tick: each subscribed pair steps with probability ``per_tick`` (so
        updates arrive at ``rate`` a second on average, at irregular times, and the load is
        spread over the ticks), each subscriber gets its own frame for each step.

        Synchronous on purpose: no subscription can change in the middle of a tick."""
        ts = iso_now()
        dumps = orjson.dumps
        market = self.market
        push = self._push
        chance = self._tick_rng.random
        frames = 0
        for symbol, subs in self._subs.items():
            if per_tick < 1.0 and chance() >= per_tick:
                continue
            step = market.step(symbol)
            for conn, stream in subs.values():
                corrupt = bool(conn.corrupt) and symbol in conn.corrupt
                frame = stream.update(step, ts, corrupt=corrupt)
                if frame is None:
                    continue
                if corrupt:
                    conn.corrupt.discard(symbol)
                push(conn, dumps(frame))
                frames += 1
        self.stats.book_frames += frames

    async def _heartbeat_loop(self) -> None:
        """A heartbeat for each subscribed connection that sent nothing for an interval."""
        loop = asyncio.get_running_loop()
        interval = self.heartbeat_interval
        frame = b'{"channel":"heartbeat"}'
        while True:
            await asyncio.sleep(interval / 4)
            now = loop.time()
            for conn in list(self._conns.values()):
                if (conn.subscribed and not conn.out and not conn.busy
                        and conn.stalled_until <= now and now - conn.last_sent >= interval):
                    conn.last_sent = now  # one per interval even if the send is slow
                    self._push(conn, frame)
                    self.stats.heartbeats += 1

    async def _replay(self, conn: _Conn, symbol: str) -> None:
        """Serve one symbol's recorded frames to one subscriber, paced by their timestamps."""
        assert self.recording is not None
        speed = self.speed
        for delay, line in self.recording.frames[symbol]:
            if delay > 0 and speed > 0:
                await asyncio.sleep(delay / speed)
            if len(conn.out) >= REPLAY_BACKLOG:
                # as fast as the client reads, never faster: a long file at speed 0 must
                # not overflow the queue and get the client cut off as a slow consumer
                conn.room.clear()
                await conn.room.wait()
            if not self._flowing.is_set():
                await self._flowing.wait()
            if symbol in conn.corrupt and b'"update"' in line:
                conn.corrupt.discard(symbol)
                line = corrupt_checksum(line)
            self._push(conn, line)
            self.stats.book_frames += 1
        log.info("sim replay of %s done for connection %d", symbol, conn.id)

