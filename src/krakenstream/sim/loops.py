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
import math
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
#: (see :class:`Pacer` for a late one)
TICK_HZ = 50.0
#: a late tick takes at most this many times a punctual tick's chance, and owes the rest
CATCH_UP = 4.0
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


class Pacer:
    """How likely each pair is to step on a tick, so that pairs step ``rate`` times a
    second on average whatever the ticks' timing.

    A tick's chance is ``rate`` times the time since the previous tick. A late tick (the
    CPU busy) does not take it all at once: a tick takes at most :data:`CATCH_UP` times a
    punctual tick's chance, and the rest is owed to the next ones, so a stall is made up
    for smoothly rather than as one burst of every pair. More than one step per pair owed
    is dropped (counted in :attr:`lost`). Nothing is owed while the market does not move."""

    __slots__ = ("rate", "most", "last", "owed", "lost")

    def __init__(self, rate: float, period: float, now: float) -> None:
        self.rate = rate
        self.most = min(1.0, CATCH_UP * rate * period)
        self.last = now
        self.owed = 0.0
        #: steps per pair dropped because they were owed for too long
        self.lost = 0.0

    def tick(self, now: float, moving: bool) -> float:
        """The chance of a step for each pair on the tick at loop time ``now``."""
        elapsed, self.last = now - self.last, now
        if not moving:
            self.owed = 0.0
            return 0.0
        owed = self.owed + self.rate * max(0.0, elapsed)
        if owed > 1.0 + self.most:
            self.lost += owed - 1.0 - self.most
            owed = 1.0 + self.most
        chance = min(owed, self.most)
        self.owed = owed - chance
        return chance


class MarketLoop:
    """Steps the random market and fans each step out to the pair's subscribers.

    Keeps who gets each pair's steps (symbol -> connection id -> (connection, stream)), so a
    tick costs the pairs that step, not every listed one, nor even every subscribed one."""

    def __init__(
        self, market: Market, rate: float, rng: random.Random, flow: Flow, stats: SimStats,
    ) -> None:
        self.market = market
        self.rate = rate
        self.rng = rng
        self.flow = flow
        self.stats = stats
        self.subs: dict[str, dict[int, tuple[Connection, BookStream]]] = {}
        #: the items of ``subs`` as a list, to pick pairs by index; None once they change
        self._order: list[tuple[str, dict[int, tuple[Connection, BookStream]]]] | None = None

    def add(self, conn: Connection, stream: BookStream) -> None:
        subs = self.subs.get(stream.symbol)
        if subs is None:
            subs = self.subs[stream.symbol] = {}
            self._order = None
        subs[conn.id] = (conn, stream)

    def remove(self, symbol: str, conn: Connection) -> None:
        subs = self.subs.get(symbol)
        if subs is not None:
            subs.pop(conn.id, None)
            if not subs:
                del self.subs[symbol]
                self._order = None

    async def run(self) -> None:
        """Tick ``TICK_HZ`` times a second; on each tick a pair steps with the chance that
        ``rate`` gives the time since the previous one (see :class:`Pacer`)."""
        loop = asyncio.get_running_loop()
        period = 1.0 / max(TICK_HZ, self.rate)
        pacer = Pacer(self.rate, period, loop.time())
        next_at = loop.time()
        warned_at = -1e9
        while True:
            next_at += period
            chance = pacer.tick(loop.time(), self.flow.moving)
            if chance > 0.0:
                self.step_all(chance, iso_now())
            late = loop.time() - next_at
            if late > 0:
                if late > period and loop.time() - warned_at > 10.0:
                    warned_at = loop.time()
                    log.warning("sim market loop fell %.3fs behind (CPU busy)%s", late,
                                f"; {pacer.lost:.1f} updates per pair lost so far"
                                if pacer.lost else "")
                next_at = loop.time()
            await asyncio.sleep(next_at - loop.time())

    def step_all(self, chance: float, timestamp: str) -> int:
        """One market tick: each subscribed pair steps with probability ``chance`` (so
        updates arrive at ``rate`` a second on average, at irregular times, and the load is
        spread over the ticks), each subscriber gets its own frame for each step. Returns
        the frames queued.

        The pairs that step are picked by drawing the gaps between them (geometric), which
        is the same as a coin per pair, for the cost of the pairs that step.

        Synchronous on purpose: no subscription can change in the middle of a tick."""
        order = self._order
        if order is None:
            order = self._order = list(self.subs.items())
        n = len(order)
        if chance <= 0.0 or not n:
            return 0
        frames = 0
        if chance >= 1.0:
            for symbol, subs in order:
                frames += self._step(symbol, subs, timestamp)
        else:
            rand, log = self.rng.random, math.log
            log_miss = math.log1p(-chance)  # log(1 - chance) < 0
            i = int(log(1.0 - rand()) / log_miss)
            while i < n:
                symbol, subs = order[i]
                frames += self._step(symbol, subs, timestamp)
                i += 1 + int(log(1.0 - rand()) / log_miss)
        self.stats.book_frames += frames
        return frames

    def _step(
        self, symbol: str, subs: dict[int, tuple[Connection, BookStream]], timestamp: str,
    ) -> int:
        """Step one pair; queue each subscriber its frame. Returns the frames queued."""
        step = self.market.step(symbol)
        frames = 0
        for conn, stream in subs.values():
            corrupt = bool(conn.corrupt) and symbol in conn.corrupt
            frame = stream.update(step, timestamp, corrupt=corrupt)
            if frame is None:
                continue
            if corrupt:
                conn.corrupt.discard(symbol)
            conn.push(orjson.dumps(frame))
            frames += 1
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

