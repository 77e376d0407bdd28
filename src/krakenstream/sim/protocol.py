"""What the simulated exchange answers: Kraken v2 requests in, answers and orders out.

Sans-I/O, as websockets keeps ``protocol.py`` apart from its connections: a :class:`Session`
is one connection's subscriptions. :meth:`Session.receive` reads one request and returns,
in the order they must happen, the frames to send (acks, errors, pongs — Kraken's shapes,
see ``kraken-v2.md``) and the orders the server carries out (open or close a book stream,
send the instrument snapshot, the private ``x-sim-*`` controls). No asyncio, no sockets; the
clock that stamps ``time_in``/``time_out`` is passed in.

The status and instrument frames are built here too: every frame that is not a book frame.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from ..core.pairs import VALID_DEPTHS

API_VERSION = "v2"
VERSION = "2.0.10"


def iso_now() -> str:
    """Kraken's timestamp form: ISO 8601, microseconds, ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def status_frame(connection_id: int, system: str) -> bytes:
    """The ``status`` frame: sent on connect and when maintenance starts or ends."""
    return orjson.dumps({"channel": "status", "type": "update", "data": [{
        "api_version": API_VERSION, "connection_id": connection_id, "system": system,
        "version": VERSION,
    }]})


def instrument_frame(data: dict[str, Any]) -> bytes:
    """An ``instrument`` snapshot; ``data`` is an object (``assets``, ``pairs``), not a list."""
    return orjson.dumps({"channel": "instrument", "type": "snapshot", "data": data})


@dataclass(frozen=True, slots=True)
class Catalog:
    """What the exchange lists: its symbols, and for a replay the one depth each symbol was
    recorded at (any valid depth otherwise)."""

    symbols: Container[str]
    fixed_depths: Mapping[str, int] | None = None

    def serves(self, symbol: object) -> bool:
        return type(symbol) is str and symbol in self.symbols

    def allows(self, symbol: str, depth: object) -> bool:
        if type(depth) is not int or depth not in VALID_DEPTHS:
            return False
        return self.fixed_depths is None or self.fixed_depths.get(symbol) == depth


# -- what a request turns into -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """A frame to send this connection; ``error`` marks a failure answer (counted)."""

    frame: bytes
    error: bool = False


@dataclass(frozen=True, slots=True)
class OpenBook:
    """Start this connection's stream of ``symbol`` (its snapshot first, if asked for)."""

    symbol: str
    depth: int
    snapshot: bool


@dataclass(frozen=True, slots=True)
class CloseBook:
    """Stop this connection's stream of ``symbol``."""

    symbol: str


@dataclass(frozen=True, slots=True)
class SendInstrument:
    """Send the instrument snapshot."""


@dataclass(frozen=True, slots=True)
class Fault:
    """``x-sim-fault``: checked, answered and carried out by :mod:`.faults`."""

    params: Any
    req_id: Any
    time_in: str


@dataclass(frozen=True, slots=True)
class Pause:
    """``x-sim-pause``: freeze or thaw the market."""

    paused: bool


@dataclass(frozen=True, slots=True)
class ShowBook:
    """``x-sim-book``: the server answers with its own book (:meth:`Session.answer`)."""

    symbol: str
    depth: int
    req_id: Any
    time_in: str


Action = Reply | OpenBook | CloseBook | SendInstrument | Fault | Pause | ShowBook


class Session:
    """One connection's subscriptions, as the exchange keeps them: requests in, actions out."""

    __slots__ = ("catalog", "clock", "depths", "instrument")

    def __init__(self, catalog: Catalog, clock: Callable[[], str] = iso_now) -> None:
        self.catalog = catalog
        self.clock = clock
        #: subscribed book symbols and their depths
        self.depths: dict[str, int] = {}
        self.instrument = False

    @property
    def subscribed(self) -> bool:
        return self.instrument or bool(self.depths)

    def receive(self, message: str | bytes) -> list[Action]:
        """What to do about one request, in order."""
        time_in = self.clock()
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            return [self.error(None, None, "Malformed request", time_in)]
        if type(req) is not dict:
            return [self.error(None, None, "Malformed request", time_in)]
        method = req.get("method")
        req_id = req.get("req_id")
        params = req.get("params")
        if method == "ping":
            return [self.answer({"method": "pong"}, req_id, time_in)]
        if method in ("subscribe", "unsubscribe"):
            if type(params) is not dict:
                return [self.error(method, req_id, "Params field must be an object", time_in)]
            return self._subscription(method, req_id, params, time_in)
        if method == "x-sim-fault":
            return [Fault(params, req_id, time_in)]
        if method == "x-sim-book":
            return self._control_book(req_id, params, time_in)
        if method == "x-sim-pause":
            return self._control_pause(req_id, params, time_in)
        return [self.error(method if type(method) is str else None, req_id,
                           f"Unsupported method {method}", time_in)]

    # -- answers -----------------------------------------------------------------------

    def answer(self, body: dict[str, Any], req_id: Any, time_in: str) -> Reply:
        """``body`` with the request's ``req_id`` and Kraken's ``time_in``/``time_out``."""
        return Reply(self._stamp(body, req_id, time_in))

    def error(
        self, method: str | None, req_id: Any, error: str, time_in: str, *, symbol: Any = None,
    ) -> Reply:
        """A failure answer: ``success`` false, no ``result``."""
        body: dict[str, Any] = {"error": error, "success": False}
        if method is not None:
            body["method"] = method
        if symbol is not None:
            body["symbol"] = symbol
        return Reply(self._stamp(body, req_id, time_in), error=True)

    def _stamp(self, body: dict[str, Any], req_id: Any, time_in: str) -> bytes:
        if req_id is not None:
            body["req_id"] = req_id
        body["time_in"] = time_in
        body["time_out"] = self.clock()
        return orjson.dumps(body)

    # -- subscriptions -----------------------------------------------------------------

    def _subscription(
        self, method: str, req_id: Any, params: dict[str, Any], time_in: str
    ) -> list[Action]:
        channel = params.get("channel")
        subscribe = method == "subscribe"
        if channel == "book":
            return self._book(subscribe, req_id, params, time_in)
        if channel == "instrument":
            self.instrument = subscribe
            result: dict[str, Any] = {"channel": "instrument"}
            if subscribe:
                result["snapshot"] = params.get("snapshot", True) is not False
            out: list[Action] = [self.answer(
                {"method": method, "result": result, "success": True}, req_id, time_in)]
            if subscribe and result["snapshot"]:
                out.append(SendInstrument())
            return out
        if channel in ("heartbeat", "status"):
            return [self.answer({"method": method, "result": {"channel": channel},
                                 "success": True}, req_id, time_in)]
        return [self.error(method, req_id, f"Channel {channel} not supported", time_in)]

    def _book(
        self, subscribe: bool, req_id: Any, params: dict[str, Any], time_in: str
    ) -> list[Action]:
        """One answer per symbol (an ack or an error), each followed by its order."""
        method = "subscribe" if subscribe else "unsubscribe"
        symbols = params.get("symbol")
        if type(symbols) is not list:
            return [self.error(method, req_id, "Symbol field must be an array", time_in)]
        depth = params.get("depth", 10)
        snapshot = params.get("snapshot", True) is not False
        out: list[Action] = []
        for symbol in symbols:
            if not self.catalog.serves(symbol):
                out.append(self.error(method, req_id, f"Currency pair not supported {symbol}",
                                      time_in, symbol=symbol))
            elif not self.catalog.allows(symbol, depth):
                out.append(self.error(method, req_id, "Subscription depth not supported",
                                      time_in, symbol=symbol))
            elif not subscribe:
                if self.depths.get(symbol) != depth:
                    # Kraken names this error "subscribe": clients must match on req_id
                    out.append(self.error("subscribe", req_id, "Subscription Not Found",
                                          time_in, symbol=symbol))
                    continue
                del self.depths[symbol]
                out.append(CloseBook(symbol))
                out.append(self.answer({"method": method, "result": {
                    "channel": "book", "depth": depth, "symbol": symbol}, "success": True},
                    req_id, time_in))
            elif symbol in self.depths:
                out.append(self.error(method, req_id, "Already subscribed", time_in,
                                      symbol=symbol))
            else:
                out.append(self.answer({"method": method, "result": {
                    "channel": "book", "depth": depth, "snapshot": snapshot, "symbol": symbol},
                    "success": True}, req_id, time_in))
                self.depths[symbol] = depth
                out.append(OpenBook(symbol, depth, snapshot))
        return out

    # -- the simulator's own controls --------------------------------------------------

    def _control_book(self, req_id: Any, params: Any, time_in: str) -> list[Action]:
        params = params if type(params) is dict else {}
        symbol, depth = params.get("symbol"), params.get("depth", 10)
        if type(symbol) is not str or type(depth) is not int or depth < 1:
            return [self.error("x-sim-book", req_id, "bad request: symbol and depth", time_in)]
        return [ShowBook(symbol, depth, req_id, time_in)]

    def _control_pause(self, req_id: Any, params: Any, time_in: str) -> list[Action]:
        params = params if type(params) is dict else {}
        paused = params.get("paused", True)
        if type(paused) is not bool:
            return [self.error("x-sim-pause", req_id, "bad request: paused is a boolean",
                               time_in)]
        return [Pause(paused), self.answer({"method": "x-sim-pause", "result": {
            "paused": paused}, "success": True}, req_id, time_in)]
