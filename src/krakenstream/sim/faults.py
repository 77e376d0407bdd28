"""The faults the simulator injects, on command or at random, and their control message.

- ``drop``: the TCP connection is aborted, no close frame (or, given a ``code``, closed
  cleanly with it: 1001, 1011...);
- ``corrupt``: one update of one symbol carries a wrong checksum;
- ``stall``: nothing at all (frames, heartbeats) for some seconds; frames are held, then sent;
- ``maintenance``: ``status`` says ``maintenance``, the market stops for some seconds
  (optionally the connections are closed), then ``online`` again.

Another process asks for one with the private method
``{"method":"x-sim-fault","params":{"kind":"drop"}}`` (also ``symbol``, ``seconds``,
``close``, ``code``, and ``scope``: ``others`` by default, ``self`` or ``all``);
:func:`parse_fault` checks it. With a ``fault_rate`` a seeded loop injects faults at random.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .connection import Connection
from .loops import Flow
from .protocol import status_frame
from .stats import FAULT_KINDS, FaultKind, SimStats

log = logging.getLogger(__name__)

__all__ = ["FAULT_KINDS", "FAULT_USAGE", "FaultKind", "FaultOrder", "Faults", "parse_fault"]

Scope = Literal["others", "self", "all"]
SCOPES: tuple[Scope, ...] = ("others", "self", "all")
#: close code when the server shuts down or goes into maintenance ("going away")
GOING_AWAY = 1001
FAULT_USAGE = (f"bad fault: kind one of {', '.join(FAULT_KINDS)}, scope one of "
               "others/self/all, seconds 0..3600, code 1000..4999")


@dataclass(frozen=True, slots=True)
class FaultOrder:
    """One fault, as asked for by ``x-sim-fault``."""

    kind: FaultKind
    #: which connections, seen from the one that asked
    scope: Scope = "others"
    symbol: str | None = None
    seconds: float = 2.0
    close: bool = False
    code: int | None = None


def parse_fault(params: Any) -> FaultOrder | None:
    """The order in an ``x-sim-fault`` request's ``params``; None if anything is off."""
    params = params if type(params) is dict else {}
    kind = params.get("kind")
    scope = params.get("scope", "others")
    seconds = params.get("seconds", 2.0)
    symbol = params.get("symbol")
    code = params.get("code")
    valid = (
        kind in FAULT_KINDS
        and scope in SCOPES
        and type(seconds) in (int, float) and 0 <= seconds <= 3600
        and (symbol is None or type(symbol) is str)
        and (code is None or (type(code) is int and 1000 <= code <= 4999))
    )
    if not valid:
        return None
    return FaultOrder(kind, scope, symbol, float(seconds), bool(params.get("close", False)),
                      code)


def targets(scope: Scope, asking: Connection, conns: Sequence[Connection]) -> list[Connection]:
    """The connections an order from ``asking`` aims at."""
    if scope == "self":
        return [asking]
    if scope == "all":
        return list(conns)
    return [c for c in conns if c is not asking]


def draw(
    rng: random.Random, kinds: Sequence[FaultKind], candidates: Sequence[Connection]
) -> tuple[FaultKind, list[Connection], float]:
    """A random fault: its kind, its targets (all for maintenance, else one) and length."""
    kind = rng.choice(kinds)
    seconds = rng.uniform(0.5, 2.5)
    if kind == "maintenance":
        return kind, list(candidates), seconds
    return kind, [rng.choice(candidates)], seconds


class Faults:
    """Carries faults out on the server's connections; owns the maintenance window."""

    def __init__(
        self, conns: Mapping[int, Connection], flow: Flow, stats: SimStats, rng: random.Random,
    ) -> None:
        self.conns = conns
        self.flow = flow
        self.stats = stats
        self.rng = rng
        self._maintenance: asyncio.Task[None] | None = None

    def control(self, conn: Connection, params: Any, req_id: Any, time_in: str) -> None:
        """Answer an ``x-sim-fault`` request from ``conn``, then carry it out."""
        order = parse_fault(params)
        session = conn.session
        if order is None:
            self.stats.errors += 1
            conn.push(session.error("x-sim-fault", req_id, FAULT_USAGE, time_in).frame)
            return
        aimed = targets(order.scope, conn, list(self.conns.values()))
        conn.push(session.answer({"method": "x-sim-fault", "result": {
            "kind": order.kind, "scope": order.scope}, "success": True}, req_id, time_in).frame)
        self.inject(order.kind, aimed, order.symbol, order.seconds, order.close, order.code)

    def inject(
        self, kind: FaultKind, aimed: list[Connection], symbol: str | None, seconds: float,
        close: bool, code: int | None = None,
    ) -> int:
        """Inject ``kind`` into ``aimed`` (maintenance: into every connection); returns how
        many connections it touched."""
        self.stats.faults[kind] += 1
        if kind == "maintenance":
            self.start_maintenance(seconds, close)
            return len(self.conns)
        now = asyncio.get_running_loop().time()
        touched = 0
        for conn in aimed:
            if kind == "drop":
                if code is None:
                    conn.abort()
                else:
                    conn.close_now(code, "dropped by the simulator")
                touched += 1
            elif kind == "corrupt":
                sym = symbol
                if sym is None and conn.depths:
                    sym = self.rng.choice(sorted(conn.depths))
                if sym is not None and sym in conn.depths:
                    conn.corrupt.add(sym)
                    touched += 1
            elif kind == "stall":
                conn.stall(now + seconds)
                touched += 1
        log.info("sim fault kind=%s connections=%d symbol=%s seconds=%s",
                 kind, touched, symbol, seconds)
        return touched

    # -- maintenance -------------------------------------------------------------------

    def start_maintenance(self, seconds: float, close: bool) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
        self.flow.set_maintenance(True)
        self._broadcast_status("maintenance")
        if close:
            for conn in list(self.conns.values()):
                conn.close_after_queue(GOING_AWAY, "maintenance")
        log.info("sim maintenance seconds=%s close=%s", seconds, close)
        self._maintenance = asyncio.create_task(self._end_maintenance(seconds))

    async def _end_maintenance(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._maintenance = None
        self.flow.set_maintenance(False)
        self._broadcast_status("online")
        log.info("sim maintenance over")

    def _broadcast_status(self, system: str) -> None:
        for conn in list(self.conns.values()):
            conn.push(status_frame(conn.id, system))

    async def stop(self) -> None:
        task, self._maintenance = self._maintenance, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- at random ---------------------------------------------------------------------

    async def run_random(self, rate: float, kinds: Sequence[FaultKind]) -> None:
        """Inject a random fault ``rate`` times a second on average, into connections
        subscribed to some book."""
        rng = self.rng
        while True:
            await asyncio.sleep(rng.expovariate(rate))
            candidates = [c for _, c in sorted(self.conns.items()) if c.depths]
            if not candidates:
                continue
            kind, aimed, seconds = draw(rng, kinds, candidates)
            self.inject(kind, aimed, None, seconds, close=False)
