"""What the simulator sends unasked: the market's book updates, heartbeats, and replays.

One market loop steps every subscribed pair ``rate`` times a second on average, at irregular
times, and hands each subscriber its own frame (see :class:`~.market.BookStream`); a
heartbeat loop fills the silences; a replay task per subscription serves a recording paced
by its timestamps. All of them hold still while the :class:`Flow` is stopped (a pause asked
for by a test, or maintenance); heartbeats go on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence

import orjson

from .connection import Connection
from .market import BookStream, Market
from .protocol import iso_now
from .replay import corrupt_checksum
from .stats import SimStats

log = logging.getLogger(__name__)

#: market ticks a second; each subscribed pair steps on a tick with probability rate / TICK_HZ
TICK_HZ = 50.0
HEARTBEAT = b'{"channel":"heartbeat"}'


class Flow:
    """Whether the market moves: not while paused (by a test) nor during maintenance."""

    __slots__ = ("paused", "maintenance", "_moving")

    def __init__(self) -> None:
        self.paused = False
        self.maintenance = False
        self._moving = asyncio.Event()
        self._moving.set()

    @property
    def moving(self) -> bool:
        return self._moving.is_set()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self._update()

    def set_maintenance(self, maintenance: bool) -> None:
        self.maintenance = maintenance
        self._update()

    async def wait(self) -> None:
        """Return once the market moves."""
        await self._moving.wait()

    def _update(self) -> None:
        if self.paused or self.maintenance:
            self._moving.clear()
        else:
            self._moving.set()


class MarketLoop:
    """Steps the random market and fans each step out to the pair's subscribers.

    Keeps who gets each pair's steps (symbol -> connection id -> (connection, stream)), so a
    tick costs the subscribed pairs, not every listed one."""

    def __init__(
        self, market: Market, rate: float, rng: random.Random, flow: Flow, stats: SimStats,
    ) -> None:
        self.market = market
        self.rate = rate
        self.rng = rng
        self.flow = flow
        self.stats = stats
        self.subs: dict[str, dict[int, tuple[Connection, BookStream]]] = {}

    def add(self, conn: Connection, stream: BookStream) -> None:
        self.subs.setdefault(stream.symbol, {})[conn.id] = (conn, stream)

    def remove(self, symbol: str, conn: Connection) -> None:
        subs = self.subs.get(symbol)
        if subs is not None:
            subs.pop(conn.id, None)
            if not subs:
                del self.subs[symbol]

    async def run(self) -> None:
        """Tick ``TICK_HZ`` times a second; never tries to catch up after falling behind."""
        loop = asyncio.get_running_loop()
        tick_hz = max(TICK_HZ, self.rate)
        period = 1.0 / tick_hz
        per_tick = self.rate / tick_hz
        next_at = loop.time()
        warned_at = -1e9
        while True:
            next_at += period
            if self.flow.moving:
                self.step_all(per_tick, iso_now())
            delay = next_at - loop.time()
            if delay < 0:
                if loop.time() - warned_at > 10.0:
                    warned_at = loop.time()
                    log.warning("sim market loop fell %.3fs behind (CPU busy); not catching up",
                                -delay)
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(delay)

    def step_all(self, per_tick: float, timestamp: str) -> int:
        """One market tick: each subscribed pair steps with probability ``per_tick`` (so
        updates arrive at ``rate`` a second on average, at irregular times, and the load is
        spread over the ticks), each subscriber gets its own frame for each step. Returns
        the frames queued.

        Synchronous on purpose: no subscription can change in the middle of a tick."""
        dumps = orjson.dumps
        market = self.market
        chance = self.rng.random
        frames = 0
        for symbol, subs in self.subs.items():
            if per_tick < 1.0 and chance() >= per_tick:
                continue
            step = market.step(symbol)
            for conn, stream in subs.values():
                corrupt = bool(conn.corrupt) and symbol in conn.corrupt
                frame = stream.update(step, timestamp, corrupt=corrupt)
                if frame is None:
                    continue
                if corrupt:
                    conn.corrupt.discard(symbol)
                conn.push(dumps(frame))
                frames += 1
        self.stats.book_frames += frames
        return frames


def wants_heartbeat(conn: Connection, now: float, interval: float) -> bool:
    """A subscribed connection with nothing to send, not stalled, silent for ``interval``."""
    return (conn.subscribed and not conn.out and not conn.busy
            and conn.stalled_until <= now and now - conn.last_sent >= interval)


async def heartbeats(conns: Mapping[int, Connection], interval: float, stats: SimStats) -> None:
    """A heartbeat for each subscribed connection that sent nothing for an interval."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval / 4)
        now = loop.time()
        for conn in list(conns.values()):
            if wants_heartbeat(conn, now, interval):
                conn.last_sent = now  # one per interval even if the send is slow
                conn.push(HEARTBEAT)
                stats.heartbeats += 1


async def replay(
    conn: Connection, symbol: str, frames: Sequence[tuple[float, bytes]], speed: float,
    flow: Flow, stats: SimStats,
) -> None:
    """Serve one symbol's recorded frames to one subscriber, paced by their timestamps
    (``speed`` times faster; 0: no pauses)."""
    for delay, line in frames:
        if delay > 0 and speed > 0:
            await asyncio.sleep(delay / speed)
        # as fast as the client reads, never faster: a long file at speed 0 must not
        # overflow the queue and get the client cut off as a slow consumer
        await conn.wait_for_room()
        if not flow.moving:
            await flow.wait()
        if symbol in conn.corrupt and b'"update"' in line:
            conn.corrupt.discard(symbol)
            line = corrupt_checksum(line)
        conn.push(line)
        stats.book_frames += 1
    log.info("sim replay of %s done for connection %d", symbol, conn.id)

