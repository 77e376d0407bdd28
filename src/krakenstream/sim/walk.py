"""One pair's whole simulated book and its seeded random walk.

Pure: no asyncio, no clock, no sockets. Every value is a scaled integer (``price *
10**price_precision``, ``qty * 10**qty_precision``) as in :mod:`krakenstream.core`, so the
checksum is exact by construction.

A :class:`PairBook` holds each side deeper than any subscription (more than 1000 levels).
:meth:`PairBook.step` moves one side by one event in its top 10, sometimes two, plus a few
deeper ones that only deeper views see: the event mix is fitted to Kraken's frames (see
:mod:`.market` for the rules and the figures). Now and then a delete takes the best level
or a new level betters it, so the mid moves, leaning back towards its start the further it
wanders. The book never crosses. Each step reports the net change of every level it touched.

A book that only shallow views watch need not hold a thousand levels: built for a
``depth``, it keeps that depth plus :data:`SHALLOW_MARGIN` levels (and up to as many again),
and a deep event that would land beyond them is dropped, as nobody could see it. Its top
levels walk by the same rules; :meth:`PairBook.reach` deepens it when a deeper view comes
(a depth-1000 view gets the full book). A simulator serving thousands of pairs at depth 10
so keeps a tenth of the levels, and builds each book ten times faster.

Each side keeps the checksum text of its top 10 until one of them changes, so a step
formats only the levels of the side it moved.
"""

from __future__ import annotations

import math
import random
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from itertools import accumulate
from typing import NamedTuple

from ..core.checksum import CHECKSUM_LEVELS
from ..core.events import Level
from .specs import PairSpec, round_sig

#: every side keeps between these many levels, so a depth-1000 view is always full
MIN_LEVELS = 1050
MAX_LEVELS = 1250
#: a side starts with this many levels
START_LEVELS = 1120
#: a book built for views of some depth keeps this many levels more than the depth (and up
#: to as many again); from depth 1000 on, every book is full (MIN_LEVELS..MAX_LEVELS)
SHALLOW_MARGIN = MIN_LEVELS - 1000

#: the largest scaled value we emit: keeps every number exact as a float
MAX_SCALED: int = 10**15


#: (price, qty before the step, qty after the step); 0 means absent
Change = tuple[int, int, int]


class Step(NamedTuple):
    """The net effect of one :meth:`PairBook.step`: every level whose qty differs."""

    symbol: str
    bids: list[Change]
    asks: list[Change]
    #: Kraken's checksum of the book after the step (the top 10 are in every view)
    checksum: int


class Side:
    """One side: sorted keys (best first) and qty by price. Bids are keyed by -price.

    Also the checksum text of each of its top 10 levels, kept up to date by :meth:`set`
    (call :meth:`resync` after touching ``keys`` and ``qty`` by hand), so the checksum
    formats only the levels that change."""

    __slots__ = ("sign", "keys", "qty", "_top", "_token")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.keys: list[int] = []
        self.qty: dict[int, int] = {}
        #: the checksum text of each of the top 10 levels, best first
        self._top: list[str] = []
        self._token: bytes | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def price_at(self, i: int) -> int:
        return self.sign * self.keys[i]

    def top(self, n: int) -> list[Level]:
        s, q = self.sign, self.qty
        return [(s * k, q[s * k]) for k in self.keys[:n]]

    def edge(self, depth: int) -> int | None:
        """The key of the last level a depth-``depth`` view holds; None: the view holds all."""
        keys = self.keys
        return keys[depth - 1] if len(keys) >= depth else None

    def token(self) -> bytes:
        """The checksum text of the top 10 levels (Kraken's: each level's price then qty,
        as scaled integers)."""
        token = self._token
        if token is None:
            token = self._token = "".join(self._top).encode()
        return token

    def resync(self) -> None:
        """Rebuild the checksum text from ``keys`` and ``qty``."""
        s, q = self.sign, self.qty
        self._top = [f"{s * k}{q[s * k]}" for k in self.keys[:CHECKSUM_LEVELS]]
        self._token = None

    def set(self, price: int, qty: int) -> int:
        """Set a level (qty 0 deletes); returns the old qty (0 if absent)."""
        levels = self.qty
        old = levels.get(price, 0)
        key = self.sign * price
        keys = self.keys
        if len(keys) < CHECKSUM_LEVELS or key <= keys[CHECKSUM_LEVELS - 1]:
            self._set_top(price, key, old, qty)  # the level is (or enters) the top 10
        elif qty:
            if not old:
                keys.insert(bisect_left(keys, key), key)
            levels[price] = qty
        elif old:
            del keys[bisect_left(keys, key)]
            del levels[price]
        return old

    def _set_top(self, price: int, key: int, old: int, qty: int) -> None:
        keys, levels, top = self.keys, self.qty, self._top
        i = bisect_left(keys, key)
        if qty:
            if old:
                top[i] = f"{price}{qty}"
            else:
                keys.insert(i, key)
                top.insert(i, f"{price}{qty}")
                del top[CHECKSUM_LEVELS:]
            levels[price] = qty
        elif old:
            del keys[i]
            del levels[price]
            del top[i]
            if len(keys) >= CHECKSUM_LEVELS:  # the 11th level enters the top 10
                p = self.sign * keys[CHECKSUM_LEVELS - 1]
                top.append(f"{p}{levels[p]}")
        else:
            return
        self._token = None


# -- the walk's event mix, fitted to Kraken's frames (see :mod:`.market`) ---------------

#: what a step does first, in its top 10: frames at depth 10 are 58% a change first, 19% a
#: new level alone, 23% a delete first (with the level republished at the edge)
_FIRST_EVENT: tuple[tuple[str, float], ...] = (
    ("change", 0.577), ("insert", 0.194), ("delete", 0.229))
#: the odds of a second event on the same side, after the first one: "D R N" 4.3% and
#: "D R C" 0.8% of frames; "C C" 3.1% and "C N" 0.8%; never after a new level
_SECOND_EVENT: dict[str, tuple[tuple[str, float], ...]] = {
    "delete": (("insert", 0.19), ("change", 0.035), ("none", 1.0)),
    "change": (("change", 0.054), ("insert", 0.014), ("none", 1.0)),
}
#: a change is at the touch this often (Kraken: 58-65%), else anywhere in the top 10
TOUCH_CHANGE = 0.6
#: deletes and new levels: mostly at the back of the top 10 (Kraken: ranks 7-9 hold half of
#: them); these weights are for ranks 1..9
_BACK_WEIGHTS = (4, 4, 3, 2, 2, 3, 7, 6, 5)
#: how often a delete takes the best level, and a new level betters the best: Kraken's BTC
#: mid moved 4 times in 509 frames; a little more here, so a short run sees the mid move
TOUCH_DELETE = 0.06
TOUCH_INSERT = 0.08
#: the chance of each further event deeper than the top 10 (seen by deeper views only)
DEEP_EVENTS = 0.5


def _levels_for(depth: int | None) -> tuple[int, int]:
    """The fewest and the most levels a side keeps for views up to ``depth`` (None: any)."""
    if depth is None or depth + SHALLOW_MARGIN >= MIN_LEVELS:
        return MIN_LEVELS, MAX_LEVELS
    floor = depth + SHALLOW_MARGIN
    return floor, floor + min(floor, MAX_LEVELS - MIN_LEVELS)


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    r = rng.random()
    acc = 0.0
    for name, p in table:
        acc += p
        if r < acc:
            return name
    return table[-1][0]


#: the cumulative weights of ranks 1..top-1, by top
_BACK_CUM = tuple(list(accumulate(_BACK_WEIGHTS[: top - 1])) for top in range(11))
#: ``paretovariate(0.6)`` is ``(1.0 - random()) ** _PARETO``
_PARETO = -1.0 / 0.6


def _back_rank(rng: random.Random, top: int) -> int:
    """A rank in 1..top-1, weighted towards the back of the top 10.

    ``rng.choices(range(top - 1), _BACK_WEIGHTS[:top - 1])`` (the same draw, the same
    answer), without building the cumulative weights each time."""
    if top <= 1:
        return 0
    cum = _BACK_CUM[top]
    return 1 + bisect_right(cum, rng.random() * (cum[-1] + 0.0), 0, len(cum) - 1)


class PairBook:
    """One pair's full book and its random walk. All randomness comes from ``rng``."""

    __slots__ = (
        "spec", "bids", "asks", "pscale", "qscale", "_gap", "_lot", "_rng", "_touched",
        "_start_mid", "_floor", "_cap", "_unseen",
    )

    def __init__(self, spec: PairSpec, rng: random.Random, depth: int | None = None) -> None:
        """``depth``: the deepest view this book must serve for now (None: any, the full
        book; see :meth:`reach`)."""
        self.spec = spec
        self._floor, self._cap = _levels_for(depth)
        #: how many levels a full book holds beyond this one's floor (0: it is full)
        self._unseen = MIN_LEVELS - self._floor
        self.pscale: int = 10**spec.price_precision
        self.qscale: int = 10**spec.qty_precision
        self.bids = Side(-1)
        self.asks = Side(1)
        self._rng = rng
        mid = max(2, round(spec.price * self.pscale))
        self._start_mid = mid
        #: the mean distance between deep levels, in ticks: about 3% of the price per side
        self._gap: float = max(0.3, mid * 2.5e-5)
        self._lot: float = max(1.0, spec.lot * self.qscale)
        self._touched: tuple[dict[int, int], dict[int, int]] = ({}, {})
        half = max(1, round(self._gap * 0.1))
        self.bids.set(max(1, mid - half), self._new_qty())
        self.asks.set(mid + half, self._new_qty())
        start = self._floor + (self._cap - self._floor) * (START_LEVELS - MIN_LEVELS) // (
            MAX_LEVELS - MIN_LEVELS)
        for side in (self.bids, self.asks):
            self._fill(side, start)

    def reach(self, depth: int) -> None:
        """Make the book deep enough for a view of ``depth`` (it never gets shallower)."""
        floor, cap = _levels_for(depth)
        if floor <= self._floor:
            return
        self._floor, self._cap, self._unseen = floor, cap, MIN_LEVELS - floor
        for side in (self.bids, self.asks):
            self._fill(side, floor)

    @property
    def full(self) -> bool:
        """The book holds every level (any view, up to depth 1000, sees all of its own)."""
        return self._unseen == 0

    # -- reading -----------------------------------------------------------------------

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    def top(self, depth: int) -> tuple[list[Level], list[Level]]:
        """(bids, asks), best first, ``depth`` levels each at most."""
        return self.bids.top(depth), self.asks.top(depth)

    def checksum(self) -> int:
        """Kraken's checksum of the book: CRC32 of the top 10 asks then the top 10 bids."""
        return zlib.crc32(self.bids.token(), zlib.crc32(self.asks.token()))

    # -- the walk ----------------------------------------------------------------------

    def step(self) -> Step:
        """Move one side of the book by one or two events in its top 10 (and a few deeper
        ones) as Kraken's frames show them; returns their net effect."""
        rng = self._rng
        for touched in self._touched:
            touched.clear()
        kind = self._touch(_pick(rng, _FIRST_EVENT))
        spread = self.asks.keys[0] + self.bids.keys[0]  # bid keys are -price
        if spread > 4 * self._gap + 2:
            kind = "open"  # a wide spread fills in: a new best level inside it
        side = self._side_for(kind)
        done = self._event(side, kind)
        second = _SECOND_EVENT.get(done)
        if second is not None:
            more = _pick(rng, second)
            if more != "none":
                self._event(side, self._touch(more))
        # events deeper than the top 10: only deeper views see them; in a shallow book,
        # drawn as in a full one, and dropped when they land beyond the levels it keeps
        keys = side.keys
        while rng.random() < DEEP_EVENTS and len(keys) > 11:
            idx = 10 + self._deep_index(len(keys) - 10 + self._unseen)
            if idx >= len(keys):
                continue
            r = rng.random()
            if r < 0.4:
                self._change(side, idx)
            elif r < 0.7:
                self._delete(side, idx)
            else:
                self._insert(side, idx)
        floor, cap = self._floor, self._cap
        for each in (self.bids, self.asks):
            while len(each.keys) < floor and self._extend(each):
                pass
            while len(each.keys) > cap:
                self._set(each, each.price_at(-1), 0)
        return self._net_step()

    def _side_for(self, kind: str) -> Side:
        """A fair coin, except for the events that move the mid: those lean back towards
        the starting price the further the mid has wandered (so a long run keeps its book
        deep). Taking the best ask or bettering the best bid lifts the mid."""
        rng = self._rng
        if kind in ("take", "open"):
            mid = (self.asks.keys[0] - self.bids.keys[0]) / 2
            lean = max(-0.4, min(0.4, (self._start_mid - mid) / (self._start_mid * 0.05)))
            up = rng.random() < 0.5 + lean
            return (self.asks if kind == "take" else self.bids) if up else (
                self.bids if kind == "take" else self.asks)
        return self.bids if rng.random() < 0.5 else self.asks

    def _touch(self, kind: str) -> str:
        """Now and then a delete takes the best level ("take") and a new level betters it
        ("open"): the events that move the mid."""
        if kind == "delete" and self._rng.random() < TOUCH_DELETE:
            return "take"
        if kind == "insert" and self._rng.random() < TOUCH_INSERT:
            return "open"
        return kind

    def _event(self, side: Side, kind: str) -> str:
        """One event in the top 10 of ``side``: a change, a delete (``take``: of the best
        level) or a new level (``open``: a new best). Returns what it turned out to be: a
        change when there was no free tick for a new level."""
        rng = self._rng
        top = min(10, len(side.keys))
        if kind == "change":
            idx = 0 if rng.random() < TOUCH_CHANGE else rng.randrange(top)
            self._change(side, idx)
            return "change"
        if kind in ("delete", "take"):
            idx = 0 if kind == "take" else _back_rank(rng, top)
            if self._delete(side, idx):
                return "delete"
        else:
            idx = 0 if kind == "open" else _back_rank(rng, top)
            if self._insert(side, idx):
                return "insert"
        self._change(side, min(idx, len(side.keys) - 1))
        return "change"

    def apply(self, bids: Iterable[Level] = (), asks: Iterable[Level] = ()) -> Step:
        """Set levels by hand (qty 0 deletes), for scripted scenarios and tests.

        Raises ValueError (and changes nothing) if the result would be crossed or a side
        empty: the walk needs a touch on both sides."""
        self._touched = ({}, {})
        for price, qty in bids:
            self._set(self.bids, price, qty)
        for price, qty in asks:
            self._set(self.asks, price, qty)
        bk, ak = self.bids.keys, self.asks.keys
        problem = ("would leave a side empty" if not bk or not ak
                   else "would cross the book" if -bk[0] >= ak[0] else None)
        if problem is not None:
            for side, touched in zip((self.bids, self.asks), self._touched, strict=True):
                for price, old in touched.items():
                    side.set(price, old)
            raise ValueError(f"{self.symbol}: those levels {problem}")
        return self._net_step()

    def _net_step(self) -> Step:
        bq, aq = self.bids.qty.get, self.asks.qty.get
        tb, ta = self._touched
        return Step(
            self.spec.symbol,
            [(p, old, new) for p, old in tb.items() if old != (new := bq(p, 0))],
            [(p, old, new) for p, old in ta.items() if old != (new := aq(p, 0))],
            self.checksum(),
        )

    def _set(self, side: Side, price: int, qty: int) -> None:
        old = side.set(price, qty)
        touched = self._touched[0 if side is self.bids else 1]
        if price not in touched:
            touched[price] = old

    def _deep_index(self, n: int) -> int:
        # heavy-tailed: P(index >= k) = (k + 1) ** -0.6; most events near the touch
        return min(n - 1, int((1.0 - self._rng.random()) ** _PARETO) - 1)

    def _new_qty(self) -> int:
        rng = self._rng
        q: float = self._lot * math.exp(rng.gauss(0.0, 1.1))  # log-normal sizes
        if rng.random() < 0.2:
            # round lots: people type 0.5, 2, 1000
            q = round_sig(q, 1)
        return min(MAX_SCALED, max(1, round(q)))

    def _change(self, side: Side, idx: int) -> None:
        """A partial fill or cancel (down) or an order joining the level (up), even odds."""
        price = side.price_at(idx)
        old = side.qty[price]
        rng = self._rng
        # rng.uniform(a, b) is a + (b - a) * rng.random()
        if rng.random() < 0.5 and old > 1:
            new = max(1, round(old * (0.05 + (0.95 - 0.05) * rng.random())))
        else:
            new = min(MAX_SCALED,
                      old + max(1, round(self._new_qty() * (0.1 + (1.0 - 0.1) * rng.random()))))
        if new == old:
            new = old - 1 if old > 1 else old + 1
        self._set(side, price, new)

    def _delete(self, side: Side, idx: int) -> bool:
        if len(side.keys) > 1:
            self._set(side, side.price_at(idx), 0)
            return True
        return False

    def _insert(self, side: Side, idx: int) -> bool:
        """A new level just in front of level ``idx`` (inside the spread for idx 0); False
        when there is no free tick there."""
        keys = side.keys
        if idx == 0:
            other = self.asks if side is self.bids else self.bids
            # keys grow away from the touch on both sides; the far bound is the other best
            hi = keys[0] - 1
            lo = -other.keys[0] + 1
            if lo > hi:  # a one-tick spread: join the queue just behind the touch instead
                return len(keys) > 1 and self._insert(side, 1)
            key = max(lo, hi - int(self._rng.expovariate(1.0 / max(1.0, self._gap * 0.2))))
        else:
            lo, hi = keys[idx - 1] + 1, keys[idx] - 1
            if lo > hi:
                return False  # adjacent ticks: no room
            key = self._rng.randint(lo, hi)
        price = side.sign * key
        if price <= 0:
            return False
        self._set(side, price, self._new_qty())
        return True

    def _fill(self, side: Side, count: int) -> None:
        """Grow a side to ``count`` levels behind its deepest one, outside any step (the
        fast path of :meth:`_extend`)."""
        keys, qty, sign = side.keys, side.qty, side.sign
        expo, new_qty, gap = self._rng.expovariate, self._new_qty, self._gap
        key = keys[-1]
        for n in range(len(keys), count):
            key += 1 + int(expo(1.0 / max(0.05, gap * (0.15 + 0.85 * min(1.0, n / 300)))))
            price = sign * key
            if price <= 0 or price >= MAX_SCALED:
                break
            keys.append(key)
            qty[price] = new_qty()
        side.resync()

    def _extend(self, side: Side) -> bool:
        """A new level behind the deepest one; False when a bid would reach zero."""
        n = len(side)
        ramp = 0.15 + 0.85 * min(1.0, n / 300)  # dense at the touch, sparse deep
        gap = 1 + int(self._rng.expovariate(1.0 / max(0.05, self._gap * ramp)))
        key = side.keys[-1] + gap
        price = side.sign * key
        if price <= 0 or price >= MAX_SCALED:
            return False
        self._set(side, price, self._new_qty())
        return True
