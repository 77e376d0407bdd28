"""The simulated exchange on the wire: Kraken WebSocket v2 over ``websockets`` on loopback.

Only scheme, host and port differ from Kraken's URL (the path is ``/v2``), so the feed client
runs its real code path against it. :class:`SimServer` assembles the parts, each in its own
module: :mod:`.protocol` decides the answers to requests (sans-I/O), :mod:`.connection` holds
each client's bounded outbound queue and its writer, :mod:`.loops` sends what nobody asked
for (market updates, heartbeats, replays), :mod:`.faults` injects faults (also at random,
with a seed, given a ``fault_rate``).

With ``replay`` it serves a recorded file instead of the random market: each subscribed
symbol's book frames, as recorded, paced by their timestamps (``speed`` times faster).

Besides ``x-sim-fault`` (see :mod:`.faults`), two private methods that Kraken does not have
let another process drive the simulator: ``{"method":"x-sim-book","params":{"symbol":
"ETH/USD","depth":10}}``, which answers with the simulator's own book as scaled integers, and
``{"method":"x-sim-pause","params":{"paused":true}}`` (``false`` to resume), so that a test
in another process can compare books.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from pathlib import Path
from types import TracebackType

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..core.events import Level, Precision
from ..errors import InputError, NotFound
from . import loops
from .connection import Connection
from .faults import GOING_AWAY, Faults
from .loops import Flow, MarketLoop
from .market import (
    DEFAULT_PAIRS,
    REPEAT_RATE,
    BookStream,
    Market,
    PairSpec,
    guess_spec,
    synthetic_specs,
)
from .protocol import (
    Action,
    Catalog,
    CloseBook,
    Fault,
    OpenBook,
    Pause,
    Reply,
    SendInstrument,
    Session,
    ShowBook,
    instrument_frame,
    iso_now,
    status_frame,
)
from .replay import Recording, load_recording
from .stats import FAULT_KINDS, FaultKind, SimStats

log = logging.getLogger(__name__)

__all__ = ["FAULT_KINDS", "PATH", "FaultKind", "SimServer", "SimStats"]

PATH = "/v2"


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
        0 = as fast as possible). Updates follow Kraken's order and shapes (see :mod:`.market`);
        ``quirks=False`` turns off the one quirk among them, a price sent twice in a frame."""
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
        self.recording: Recording | None = None
        self._rng = self._seeded("server")
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._conns: dict[int, Connection] = {}
        self._conn_count = 0
        self._flow = Flow()
        self._faults = Faults(self._conns, self._flow, self.stats, self._seeded("faults"))
        self._market_loop = MarketLoop(self.market, rate, self._seeded("ticks"), self._flow,
                                       self.stats)
        self._catalog = Catalog(self.market)
        self._instrument = instrument_frame(self.market.instrument_data())

    def _seeded(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}") if self.seed is not None else random.Random()

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
            rec = self.recording = await asyncio.to_thread(load_recording, self.replay_path)
            self._catalog = Catalog(rec.frames, rec.depths)
            self._instrument = rec.instrument
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
        self._spawn()
        log.info("sim listening url=%s pairs=%d rate=%s replay=%s",
                 self.url, len(self.symbols), self.rate, self.replay_path)

    def _spawn(self) -> None:
        tasks = self._tasks
        if self.recording is None:
            tasks.append(asyncio.create_task(self._market_loop.run(), name="sim-market"))
        tasks.append(asyncio.create_task(
            loops.heartbeats(self._conns, self.heartbeat_interval, self.stats),
            name="sim-heartbeat"))
        if self.fault_rate > 0:
            tasks.append(asyncio.create_task(
                self._faults.run_random(self.fault_rate, self.fault_kinds), name="sim-faults"))

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._faults.stop()
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
        return self.market.book(symbol, depth).top(depth)

    def precision(self, symbol: str) -> Precision:
        """The pair's price and qty precision, as its instrument frame gives them."""
        if self.recording is not None:
            if symbol not in self.recording.precisions:
                raise NotFound(f"the simulator does not list {symbol}")
            return self.recording.precisions[symbol]
        if symbol not in self.market.specs:
            raise NotFound(f"the simulator does not list {symbol}")
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
        return self._flow.paused

    @property
    def in_maintenance(self) -> bool:
        return self._flow.maintenance

    async def pause(self, drain_within: float = 2.0) -> None:
        """Stop market updates (heartbeats go on) and wait until queued frames are sent."""
        self._flow.set_paused(True)
        await self.drain(drain_within)

    async def resume(self) -> None:
        self._flow.set_paused(False)

    async def drain(self, within: float = 2.0) -> bool:
        """Wait until every (unstalled) connection's queue is sent; False if that takes
        longer than ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            now = loop.time()
            if not any(c.pending(now) for c in self._conns.values()):
                return True
            await asyncio.sleep(0.005)
        return False

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
            aimed = [self._conns[connection]]
        else:
            aimed = list(self._conns.values())
        return self._faults.inject(kind, aimed, symbol, seconds, close, code)

    # -- connections -------------------------------------------------------------------

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, f"Not Found: use {PATH}\n")
        return None

    async def _serve_connection(self, ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        self._conn_count += 1
        cid = self._rng.getrandbits(64) | (1 << 63)  # like Kraken's: beyond int64
        conn = Connection(cid, ws, self._seeded(f"conn:{self._conn_count}"),
                          Session(self._catalog), self.stats, loop.time())
        self._conns[cid] = conn
        self.stats.connections += 1
        self.stats.connections_total += 1
        conn.writer = asyncio.create_task(conn.write(), name=f"sim-writer-{cid}")
        conn.push(status_frame(cid, "maintenance" if self._flow.maintenance else "online"))
        try:
            async for message in ws:
                for action in conn.session.receive(message):
                    self._act(conn, action)
        except ConnectionClosed:
            pass
        finally:
            self._forget(conn)
            pending = [t for t in (conn.writer, *conn.replays.values()) if t is not None]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _forget(self, conn: Connection) -> None:
        conn.closed = True
        self._conns.pop(conn.id, None)
        self.stats.connections -= 1
        for symbol in conn.streams:
            self._market_loop.remove(symbol, conn)
        conn.streams.clear()
        conn.out.clear()

    # -- carrying out what the protocol decided ----------------------------------------

    def _act(self, conn: Connection, action: Action) -> None:
        if isinstance(action, Reply):
            if action.error:
                self.stats.errors += 1
            conn.push(action.frame)
        elif isinstance(action, OpenBook):
            self._open_book(conn, action)
        elif isinstance(action, CloseBook):
            self._close_book(conn, action.symbol)
        elif isinstance(action, SendInstrument):
            conn.push(self._instrument)
        elif isinstance(action, Fault):
            self._faults.control(conn, action.params, action.req_id, action.time_in)
        elif isinstance(action, Pause):
            self._flow.set_paused(action.paused)
        elif isinstance(action, ShowBook):
            self._act(conn, self._show_book(conn, action))

    def _open_book(self, conn: Connection, order: OpenBook) -> None:
        symbol = order.symbol
        if self.recording is not None:
            conn.replays[symbol] = asyncio.create_task(loops.replay(
                conn, symbol, self.recording.frames[symbol], self.speed, self._flow,
                self.stats))
            return
        stream = BookStream(self.market.book(symbol, order.depth), order.depth, conn.rng,
                            duplicate_rate=REPEAT_RATE if self.quirks else 0.0)
        frame = stream.snapshot(iso_now())
        if order.snapshot:
            conn.push(orjson.dumps(frame))
            self.stats.book_frames += 1
        conn.streams[symbol] = stream
        self._market_loop.add(conn, stream)

    def _close_book(self, conn: Connection, symbol: str) -> None:
        conn.corrupt.discard(symbol)
        if conn.streams.pop(symbol, None) is not None:
            self._market_loop.remove(symbol, conn)
        task = conn.replays.pop(symbol, None)
        if task is not None:
            task.cancel()

    def _show_book(self, conn: Connection, ask: ShowBook) -> Reply:
        """The answer to ``x-sim-book``: the sim's own book as scaled ints, for tests that
        run the sim in another process."""
        session = conn.session
        try:
            bids, asks = self.book_view(ask.symbol, ask.depth)
            prec = self.precision(ask.symbol)
        except NotFound as exc:
            return session.error("x-sim-book", ask.req_id, str(exc), ask.time_in,
                                 symbol=ask.symbol)
        return session.answer({"method": "x-sim-book", "success": True, "result": {
            "symbol": ask.symbol, "depth": ask.depth, "price_precision": prec.price,
            "qty_precision": prec.qty, "paused": self._flow.paused,
            "bids": [list(lv) for lv in bids], "asks": [list(lv) for lv in asks],
        }}, ask.req_id, ask.time_in)
