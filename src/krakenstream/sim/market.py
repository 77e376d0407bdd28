"""The simulated exchange's books: a seeded random walk, and the book frames Kraken would send.

Pure: no asyncio, no clock (timestamps are passed in), no sockets. Every value is a scaled
integer (``price * 10**price_precision``, ``qty * 10**qty_precision``) as in
:mod:`krakenstream.core`, so the checksum is exact by construction.

A :class:`PairBook` is one pair's whole book, held deeper than any subscription (more than
1000 levels a side). :meth:`PairBook.step` moves it by a few random events, mostly near the
touch: quantity changes, new levels, cancelled levels, and sweeps that move the mid. It never
crosses. Each step reports the net change of every level it touched.

A :class:`BookStream` is one subscriber's view of one pair at its depth. It turns a step into
the update Kraken would send that subscriber: only levels that changed inside the view; a
level deleted inside the view as qty 0; a level that enters the view at its edge because one
above was deleted republished with its qty; a level pushed out by an insert NOT sent (the
client must truncate). Seeded quirks the client must cope with are mixed in: now and then an
extra level beyond the depth (or the deletion of a deep level it never had), and now and then
the same price twice in one frame (the later one stands). The checksum is always the one of
the subscriber's view after the frame.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..core.checksum import checksum as crc_checksum
from ..core.events import Level, Precision
from ..core.pairs import VALID_DEPTHS, is_pair
from ..errors import InvalidPair

#: every side keeps between these many levels, so a depth-1000 view is always full
MIN_LEVELS = 1050
MAX_LEVELS = 1250
#: a side starts with this many levels
START_LEVELS = 1120

#: the largest scaled value we emit: keeps every number exact as a float
_MAX_SCALED: int = 10**15
#: how often an update sends a changed level twice (Kraken: 1 frame in 509, 4 in 979)
REPEAT_RATE = 0.005

@dataclass(frozen=True, slots=True)
class PairSpec:
    """One instrument: its symbol, precisions, starting price and typical level size."""

    symbol: str
    price_precision: int
    qty_precision: int
    #: starting mid price in quote units
    price: float
    #: a typical level's quantity in base units
    lot: float

    @property
    def base(self) -> str:
        return self.symbol.split("/", 1)[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/", 1)[1]

    @property
    def precision(self) -> Precision:
        return Precision(self.price_precision, self.qty_precision)


def _spec(symbol: str, pp: int, qp: int, price: float, usd_per_quote: float = 1.0) -> PairSpec:
    # a typical resting order is worth a few thousand dollars
    return PairSpec(symbol, pp, qp, price, 2500.0 / (price * usd_per_quote))


#: the default instruments, with Kraken's precisions and plausible prices
DEFAULT_PAIRS: tuple[PairSpec, ...] = (
    _spec("BTC/USD", 1, 8, 95000.0),
    _spec("ETH/USD", 2, 8, 3500.0),
    _spec("SOL/USD", 2, 8, 180.0),
    _spec("DOGE/USD", 7, 8, 0.38),
    _spec("PEPE/USD", 9, 2, 0.000012345),
    _spec("XRP/USD", 5, 8, 2.5),
    _spec("ADA/USD", 6, 8, 0.9),
    _spec("LTC/USD", 2, 8, 100.0),
    _spec("ETH/BTC", 5, 8, 0.03684, 95000.0),
    _spec("BTC/EUR", 1, 8, 88000.0, 1.08),
    _spec("ETH/EUR", 2, 8, 3240.0, 1.08),
    _spec("DOT/USD", 4, 8, 7.5),
    _spec("LINK/USD", 5, 8, 22.0),
    _spec("USDT/USD", 5, 8, 1.0),
)

#: rough prices of well-known assets, in dollars, to guess a pair given with ``--pairs``
_USD_PRICE = {
    "BTC": 95000.0, "XBT": 95000.0, "ETH": 3500.0, "SOL": 180.0, "DOGE": 0.38,
    "PEPE": 0.000012345, "XRP": 2.5, "ADA": 0.9, "LTC": 100.0, "DOT": 7.5, "LINK": 22.0,
    "USDT": 1.0, "USDC": 1.0, "USD": 1.0, "EUR": 1.08, "GBP": 1.27, "JPY": 0.0067,
    "CAD": 0.73, "AUD": 0.66, "CHF": 1.13, "AVAX": 40.0, "MATIC": 0.55, "POL": 0.55,
    "ATOM": 8.0, "SHIB": 0.000022, "TRX": 0.2, "BCH": 450.0, "XLM": 0.4, "UNI": 12.0,
    "AAVE": 300.0, "XMR": 190.0, "ETC": 28.0, "FIL": 5.0, "NEAR": 5.5, "ALGO": 0.35,
}


def guess_spec(symbol: str) -> PairSpec:
    """A spec for any ``BASE/QUOTE``: known assets get a plausible price, unknown ones a
    price derived from the name (stable across runs); the price precision keeps about six
    significant digits, like Kraken's."""
    if not is_pair(symbol):
        raise InvalidPair(f"not a pair of the form BASE/QUOTE: {symbol!r}")
    for spec in DEFAULT_PAIRS:
        if spec.symbol == symbol:
            return spec
    base, quote = symbol.split("/")
    base_usd = _USD_PRICE.get(base)
    if base_usd is None:
        base_usd = 10 ** random.Random(f"price:{base}").uniform(-3.0, 3.0)
    quote_usd = _USD_PRICE.get(quote, 1.0)
    price = base_usd / quote_usd
    pp = min(10, max(0, math.ceil(5.5 - math.log10(price))))
    # Kraken counts very cheap coins in whole hundredths (PEPE, SHIB: qty precision 2)
    qp = 2 if base_usd < 0.001 else 8
    return _spec(symbol, pp, qp, _round_sig(price, 5), quote_usd)


#: (price precision, qty precision, price) templates the synthetic pairs cycle through
_SYNTHETIC = (
    (1, 8, 50000.0), (2, 8, 2500.0), (3, 8, 150.0), (4, 8, 12.0), (5, 8, 1.2),
    (6, 8, 0.35), (7, 8, 0.08), (8, 2, 0.0005), (9, 2, 0.00002), (2, 4, 600.0),
)


def synthetic_specs(n: int, seed: int | str | None = None) -> list[PairSpec]:
    """``n`` pairs ``SYN0001/USD``... with varied precisions and prices, for scale tests."""
    rng = random.Random(f"synthetic:{seed}")
    out: list[PairSpec] = []
    for i in range(1, n + 1):
        pp, qp, price = _SYNTHETIC[(i - 1) % len(_SYNTHETIC)]
        price = _round_sig(price * rng.uniform(0.5, 2.0), 5)
        out.append(_spec(f"SYN{i:04d}/USD", pp, qp, price))
    return out


def _round_sig(x: float, digits: int) -> float:
    return float(f"{x:.{digits}g}")


# -- the book --------------------------------------------------------------------------------

#: (price, qty before the step, qty after the step); 0 means absent
Change = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Step:
    """The net effect of one :meth:`PairBook.step`: every level whose qty differs."""

    symbol: str
    bids: list[Change]
    asks: list[Change]
    #: Kraken's checksum of the book after the step (the top 10 are in every view)
    checksum: int


class _Side:
    """One side: sorted keys (best first) and qty by price. Bids are keyed by -price."""

    __slots__ = ("sign", "keys", "qty")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.keys: list[int] = []
        self.qty: dict[int, int] = {}

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

    def set(self, price: int, qty: int) -> int:
        """Set a level (qty 0 deletes); returns the old qty (0 if absent)."""
        old = self.qty.get(price, 0)
        key = self.sign * price
        if qty:
            if not old:
                self.keys.insert(bisect_left(self.keys, key), key)
            self.qty[price] = qty
        elif old:
            del self.keys[bisect_left(self.keys, key)]
            del self.qty[price]
        return old


# -- the walk's event mix, fitted to Kraken's frames (see the module docstring) ---------------

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


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    r = rng.random()
    acc = 0.0
    for name, p in table:
        acc += p
        if r < acc:
            return name
    return table[-1][0]


def _back_rank(rng: random.Random, top: int) -> int:
    """A rank in 1..top-1, weighted towards the back of the top 10."""
    if top <= 1:
        return 0
    weights = _BACK_WEIGHTS[: top - 1]
    return 1 + rng.choices(range(len(weights)), weights)[0]


class PairBook:
    """One pair's full book and its random walk. All randomness comes from ``rng``."""

    __slots__ = (
        "spec", "bids", "asks", "pscale", "qscale", "_gap", "_lot", "_rng", "_touched",
        "_start_mid",
    )

    def __init__(self, spec: PairSpec, rng: random.Random) -> None:
        self.spec = spec
        self.pscale: int = 10**spec.price_precision
        self.qscale: int = 10**spec.qty_precision
        self.bids = _Side(-1)
        self.asks = _Side(1)
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
        for side in (self.bids, self.asks):
            self._fill(side, START_LEVELS)

    # -- reading -----------------------------------------------------------------------

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    def top(self, depth: int) -> tuple[list[Level], list[Level]]:
        """(bids, asks), best first, ``depth`` levels each at most."""
        return self.bids.top(depth), self.asks.top(depth)

    def checksum(self) -> int:
        return crc_checksum(self.asks.top(10), self.bids.top(10))

    # -- the walk ----------------------------------------------------------------------

    def step(self) -> Step:
        """Move one side of the book by one or two events in its top 10 (and a few deeper
        ones) as Kraken's frames show them; returns their net effect."""
        rng = self._rng
        self._touched = ({}, {})
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
        # events deeper than the top 10: only deeper views see them
        while rng.random() < DEEP_EVENTS and len(side) > 11:
            idx = 10 + self._deep_index(len(side) - 10)
            r = rng.random()
            if r < 0.4:
                self._change(side, idx)
            elif r < 0.7:
                self._delete(side, idx)
            else:
                self._insert(side, idx)
        for each in (self.bids, self.asks):
            while len(each) < MIN_LEVELS and self._extend(each):
                pass
            while len(each) > MAX_LEVELS:
                self._set(each, each.price_at(-1), 0)
        return self._net_step()

    def _side_for(self, kind: str) -> _Side:
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

    def _event(self, side: _Side, kind: str) -> str:
        """One event in the top 10 of ``side``: a change, a delete (``take``: of the best
        level) or a new level (``open``: a new best). Returns what it turned out to be: a
        change when there was no free tick for a new level."""
        rng = self._rng
        top = min(10, len(side))
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
        self._change(side, min(idx, len(side) - 1))
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
        bq, aq = self.bids.qty, self.asks.qty
        tb, ta = self._touched
        return Step(
            self.spec.symbol,
            [(p, old, bq.get(p, 0)) for p, old in tb.items() if old != bq.get(p, 0)],
            [(p, old, aq.get(p, 0)) for p, old in ta.items() if old != aq.get(p, 0)],
            self.checksum(),
        )

    def _set(self, side: _Side, price: int, qty: int) -> None:
        old = side.set(price, qty)
        touched = self._touched[0 if side is self.bids else 1]
        if price not in touched:
            touched[price] = old

    def _deep_index(self, n: int) -> int:
        # heavy-tailed: P(index >= k) = (k + 1) ** -0.6; most events near the touch
        return min(n - 1, int(self._rng.paretovariate(0.6)) - 1)

    def _new_qty(self) -> int:
        rng = self._rng
        q: float = self._lot * math.exp(rng.gauss(0.0, 1.1))  # log-normal sizes
        if rng.random() < 0.2:
            # round lots: people type 0.5, 2, 1000
            q = _round_sig(q, 1)
        return min(_MAX_SCALED, max(1, round(q)))

    def _change(self, side: _Side, idx: int) -> None:
        """A partial fill or cancel (down) or an order joining the level (up), even odds."""
        price = side.price_at(idx)
        old = side.qty[price]
        rng = self._rng
        if rng.random() < 0.5 and old > 1:
            new = max(1, round(old * rng.uniform(0.05, 0.95)))
        else:
            new = min(_MAX_SCALED, old + max(1, round(self._new_qty() * rng.uniform(0.1, 1.0))))
        if new == old:
            new = old - 1 if old > 1 else old + 1
        self._set(side, price, new)

    def _delete(self, side: _Side, idx: int) -> bool:
        if len(side) > 1:
            self._set(side, side.price_at(idx), 0)
            return True
        return False

    def _insert(self, side: _Side, idx: int) -> bool:
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

    def _fill(self, side: _Side, count: int) -> None:
        """Grow a fresh side to ``count`` levels (the fast path of :meth:`_extend`)."""
        keys, qty, sign = side.keys, side.qty, side.sign
        expo, new_qty, gap = self._rng.expovariate, self._new_qty, self._gap
        key = keys[-1]
        for n in range(len(keys), count):
            key += 1 + int(expo(1.0 / max(0.05, gap * (0.15 + 0.85 * min(1.0, n / 300)))))
            price = sign * key
            if price <= 0 or price >= _MAX_SCALED:
                break
            keys.append(key)
            qty[price] = new_qty()

    def _extend(self, side: _Side) -> bool:
        """A new level behind the deepest one; False when a bid would reach zero."""
        n = len(side)
        ramp = 0.15 + 0.85 * min(1.0, n / 300)  # dense at the touch, sparse deep
        gap = 1 + int(self._rng.expovariate(1.0 / max(0.05, self._gap * ramp)))
        key = side.keys[-1] + gap
        price = side.sign * key
        if price <= 0 or price >= _MAX_SCALED:
            return False
        self._set(side, price, self._new_qty())
        return True


class Market:
    """Every pair's book, each with its own seeded generator (deterministic for a seed).

    A pair's book is built the first time it is asked for: a server listing a thousand
    synthetic pairs starts at once and pays only for the pairs somebody subscribes to.
    """

    def __init__(self, specs: Iterable[PairSpec], seed: int | str | None = None) -> None:
        self.specs: dict[str, PairSpec] = {}
        for spec in specs:
            self.specs.setdefault(spec.symbol, spec)
        self._books: dict[str, PairBook] = {}
        self._seed = seed

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.specs

    def __iter__(self) -> Iterator[str]:
        return iter(self.specs)

    def book(self, symbol: str) -> PairBook:
        """The pair's book (KeyError for an unknown pair)."""
        book = self._books.get(symbol)
        if book is None:
            spec = self.specs[symbol]
            # one generator per pair: a pair's walk does not depend on which others step
            seed = self._seed
            rng = random.Random(f"{seed}:{symbol}") if seed is not None else random.Random()
            book = self._books[symbol] = PairBook(spec, rng)
        return book

    def step(self, symbol: str) -> Step:
        return self.book(symbol).step()

    def precision(self, symbol: str) -> Precision:
        return self.specs[symbol].precision

    def instrument_data(self) -> dict[str, Any]:
        """The ``data`` object of an ``instrument`` snapshot for every pair."""
        assets: dict[str, dict[str, Any]] = {}
        pairs: list[dict[str, Any]] = []
        for spec in self.specs.values():
            for asset in (spec.base, spec.quote):
                assets.setdefault(asset, {
                    "id": asset, "status": "enabled", "precision": 10,
                    "precision_display": 5, "borrowable": False, "collateral_value": 0.0,
                    "margin_rate": 0.0,
                })
            pairs.append({
                "symbol": spec.symbol,
                "base": spec.base,
                "quote": spec.quote,
                "status": "online",
                "qty_precision": spec.qty_precision,
                "qty_increment": increment(spec.qty_precision),
                "price_precision": spec.price_precision,
                "price_increment": increment(spec.price_precision),
                "cost_precision": 5,
                "marginable": False,
                "has_index": True,
                "cost_min": 0.5,
                "tick_size": increment(spec.price_precision),
                "qty_min": float(_round_sig(max(spec.lot / 50, 10**-spec.qty_precision), 1)),
            })
        return {"assets": list(assets.values()), "pairs": pairs}


def increment(precision: int) -> float:
    """``10**-precision`` as the float Kraken writes (``1e-08``, ``0.1``)."""
    return float(Decimal(1).scaleb(-precision))


# -- one subscriber's view -------------------------------------------------------------------


def _levels(levels: Sequence[Level], pscale: int, qscale: int) -> list[dict[str, float]]:
    # int / int is correctly rounded: the float whose shortest repr is the fixed-point value
    return [{"price": p / pscale, "qty": q / qscale} for p, q in levels]


class BookStream:
    """What Kraken sends one subscriber of one pair at one depth.

    Holds only the edges of the subscriber's view (the key of the last level on each side),
    so an update costs the number of changes, not the depth. Feed it every step of its pair,
    in order, after its snapshot.
    """

    __slots__ = ("book", "depth", "rng", "extra_rate", "duplicate_rate", "_edges")

    def __init__(
        self,
        book: PairBook,
        depth: int,
        rng: random.Random,
        *,
        extra_rate: float = 0.0,
        duplicate_rate: float = REPEAT_RATE,
    ) -> None:
        if depth not in VALID_DEPTHS:
            raise ValueError(f"depth {depth} is not one of {VALID_DEPTHS}")
        self.book = book
        self.depth = depth
        self.rng = rng
        #: how often an update carries a level beyond the depth or the delete of a level the
        #: view never had, appended at its end: not Kraken's (a stress test for clients)
        self.extra_rate = extra_rate
        #: how often a changed level is sent twice, an older qty first (Kraken's repeats)
        self.duplicate_rate = duplicate_rate
        self._edges: tuple[int | None, int | None] = (None, None)

    @property
    def symbol(self) -> str:
        return self.book.spec.symbol

    def snapshot(self, timestamp: str | None) -> dict[str, Any]:
        book, d = self.book, self.depth
        bids, asks = book.top(d)
        self._edges = (book.bids.edge(d), book.asks.edge(d))
        item: dict[str, Any] = {
            "symbol": book.spec.symbol,
            "bids": _levels(bids, book.pscale, book.qscale),
            "asks": _levels(asks, book.pscale, book.qscale),
            "checksum": crc_checksum(asks[:10], bids[:10]),
        }
        if timestamp is not None:
            item["timestamp"] = timestamp
        return {"channel": "book", "type": "snapshot", "data": [item]}

    def update(
        self, step: Step, timestamp: str, *, corrupt: bool = False
    ) -> dict[str, Any] | None:
        """The update frame for ``step``, or None when nothing in the view changed."""
        book = self.book
        d = self.depth
        old_b, old_a = self._edges
        new_b, new_a = book.bids.edge(d), book.asks.edge(d)
        bids = _view_levels(book.bids, step.bids, old_b, new_b)
        asks = _view_levels(book.asks, step.asks, old_a, new_a)
        self._edges = (new_b, new_a)
        if not bids.levels and not asks.levels:
            return None
        rng = self.rng
        if (bids.changed or asks.changed) and rng.random() < self.duplicate_rate:
            (bids if bids.changed and (not asks.changed or rng.random() < 0.5)
             else asks).repeat(rng)
        if self.extra_rate and rng.random() < self.extra_rate:
            bid_side = bool(bids.levels) and (not asks.levels or rng.random() < 0.5)
            self._extra(step, bids if bid_side else asks, new_b if bid_side else new_a)
        checksum = step.checksum
        if corrupt:
            checksum ^= 1 << rng.randrange(32)
        return {
            "channel": "book",
            "type": "update",
            "data": [{
                "symbol": step.symbol,
                "bids": _levels(bids.levels, book.pscale, book.qscale),
                "asks": _levels(asks.levels, book.pscale, book.qscale),
                "checksum": checksum,
                "timestamp": timestamp,
            }],
        }

    def _extra(self, step: Step, out: _SideUpdate, edge: int | None) -> None:
        """Something beyond the view, at the end: a deep level's deletion (the client never
        had it: deleting an absent price is a no-op), or else the next level down."""
        side = out.side
        changes = step.bids if side.sign < 0 else step.asks
        deep_deletes = [p for p, _, new in changes
                        if not new and edge is not None and side.sign * p > edge]
        if deep_deletes and self.rng.random() < 0.5:
            out.levels.append((deep_deletes[0], 0))
        elif len(side) > self.depth:
            p = side.price_at(self.depth)
            out.levels.append((p, side.qty[p]))


class _SideUpdate:
    """One side of an update frame, in Kraken's order (see the module docstring)."""

    __slots__ = ("side", "levels", "changed")

    def __init__(self, side: _Side, levels: list[Level], changed: list[int]) -> None:
        self.side = side
        self.levels = levels
        #: the positions in ``levels`` of changed levels (those a repeat may precede)
        self.changed = changed

    def repeat(self, rng: random.Random) -> None:
        """Send one changed level twice, an older qty first: the later one stands."""
        i = rng.choice(self.changed)
        p, q = self.levels[i]
        stale = q + rng.randint(1, 1000)
        self.levels.insert(i, (p, stale if stale <= _MAX_SCALED else q - 1))
        self.changed = [j + 1 if j >= i else j for j in self.changed]


def _view_levels(
    side: _Side, changes: list[Change], old_edge: int | None, new_edge: int | None
) -> _SideUpdate:
    """The levels one side of a view receives for a step, in Kraken's order.

    First each delete inside the old view (best first), each followed by the level that
    enters the view at its edge, republished with its qty: the nearest level beyond the old
    edge that existed before the step. Then the levels changed inside the view, then the new
    levels inside the new view. Applied in that order, trimming to the depth after every
    level or only after the frame, they give the new view: a trim never drops a level the
    view keeps, as every level added after the deletes is better than what it pushes out.
    A republished level a new one pushes out again is left beyond the depth, as Kraken does.
    """
    sign = side.sign
    deleted: list[int] = []
    changed: list[Level] = []
    fresh: list[tuple[int, int, int]] = []
    for price, old, new in changes:
        key = sign * price
        if not new:
            if old and (old_edge is None or key <= old_edge):
                deleted.append(key)
        elif not old:
            fresh.append((key, price, new))
        elif (old_edge is None or key <= old_edge) and (new_edge is None or key <= new_edge):
            changed.append((price, new))
    out: list[Level] = []
    if deleted:
        deleted.sort()
        entering: list[int] = []
        if old_edge is not None:
            new_prices = {p for _, p, _ in fresh}
            keys = side.keys
            i = bisect_right(keys, old_edge)
            while len(entering) < len(deleted) and i < len(keys):
                p = sign * keys[i]
                if p not in new_prices:
                    entering.append(p)
                i += 1
        qty = side.qty
        for j, key in enumerate(deleted):
            out.append((sign * key, 0))
            if j < len(entering):
                out.append((entering[j], qty[entering[j]]))
    first_change = len(out)
    out.extend(changed)
    out.extend((p, q) for key, p, q in fresh if new_edge is None or key <= new_edge)
    return _SideUpdate(side, out, list(range(first_change, first_change + len(changed))))
