"""The simulated market, and the book frames Kraken would send each subscriber.

Pure: no asyncio, no clock (timestamps are passed in), no sockets. A :class:`Market` holds
every pair's book (:mod:`.walk`, one seeded random walk each); a :class:`BookStream` is one
subscriber's view of one pair at its depth, and turns each step of the walk into the update
frame Kraken would send that subscriber. The checksum is always the one of the subscriber's
view after the frame.

How Kraken's update frames look, and so this module's (derived from two real recordings of
Kraken's BTC/USD book at depth 10: the v2 one in ``tests/data``, 2023-07-30, 509 updates, and
the v1 one in python-kraken-sdk's tests, ``tests/spot/fixture/orderbook-v1.json``,
2023-08-30, 979 updates; the same engine behind both):

1. **One side per frame.** 509 of 509 updates (978 of 979) carry levels on one side only.
2. **Few levels.** 1 level in 73% of updates, 2 in 22%, 3 in 5%; more only when an order
   sweeps several levels (1 update in 979).
3. **Deletes first.** A level deleted inside the view comes as qty 0, at once followed by
   the level that now enters the view at its edge, republished with its qty (every one of
   the 116 deletes); then the levels whose qty changed, then the new levels. Read as ``D``
   (a delete) and ``U`` (anything else), the sides are ``U`` 73%, ``DU`` 18%, ``DUU`` 5%,
   ``UU`` 4%: never an update before a delete (in v1, only a level's own partial fills
   before its delete, inside a sweep). As levels: change 54%, new 19%, delete + republish
   18%, delete + republish + new 4%, two changes 3%, delete + republish + change 1%,
   change + new 1%.
4. **A level pushed out is not sent**: the client trims to its depth. The only levels
   beyond the depth Kraken sends are republished edge levels that a new level later in the
   same frame pushes out again (delete + republish + new: all 22 beyond-depth levels).
   Kraken sends no delete for a level the view does not hold.
5. **The same price twice** only as successive changes of one level (1 update in 509, 4 in
   979): the later one stands.
6. **Deletes are 17% of levels** (both recordings: 0.173).
7. **Every frame carries a checksum** (and an update its timestamp).

A client that applies a frame level by level and trims to the depth after each one (as
python-kraken-sdk does) keeps the right book only with this order: a delete before the
republish before the new level. ``tests/test_sim_realism.py`` compares these figures between
the recording and this module's output.

The walk (:mod:`.walk`) steps one side by events fitted to these figures;
:func:`_view_levels` writes a step as Kraken would, for any step (also several deletes, or
both sides, from :meth:`~.walk.PairBook.apply`). Kraken's repeats come at Kraken's rate
(:data:`REPEAT_RATE`); ``extra_rate`` adds what Kraken does not send (levels beyond the depth
and deletes of levels the view lacks, at the end of a side), to stress a client.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..core.events import Level, Precision
from ..core.pairs import VALID_DEPTHS
from .specs import DEFAULT_PAIRS, PairSpec, guess_spec, increment, round_sig, synthetic_specs
from .walk import MAX_SCALED, MIN_LEVELS, Change, PairBook, Side, Step

__all__ = [
    "DEFAULT_PAIRS", "MIN_LEVELS", "REPEAT_RATE", "BookStream", "Market", "PairBook", "PairSpec",
    "Step", "guess_spec", "increment", "synthetic_specs",
]

#: how often an update sends a changed level twice (Kraken: 1 frame in 509, 4 in 979)
REPEAT_RATE = 0.005


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

    def book(self, symbol: str, depth: int | None = None) -> PairBook:
        """The pair's book (KeyError for an unknown pair), deep enough for a view of
        ``depth`` (None: the full book). A book first asked for at a small depth keeps few
        levels, and deepens when asked for more (see :class:`~.walk.PairBook`)."""
        book = self._books.get(symbol)
        if book is None:
            spec = self.specs[symbol]
            # one generator per pair: a pair's walk does not depend on which others step
            seed = self._seed
            rng = random.Random(f"{seed}:{symbol}") if seed is not None else random.Random()
            book = self._books[symbol] = PairBook(spec, rng, depth)
        elif depth is None:
            book.reach(1000)
        else:
            book.reach(depth)
        return book

    def step(self, symbol: str) -> Step:
        book = self._books.get(symbol)
        return (book if book is not None else self.book(symbol)).step()

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
                "status": spec.status,
                "qty_precision": spec.qty_precision,
                "qty_increment": increment(spec.qty_precision),
                "price_precision": spec.price_precision,
                "price_increment": increment(spec.price_precision),
                "cost_precision": 5,
                "marginable": False,
                "has_index": True,
                "cost_min": 0.5,
                "tick_size": increment(spec.price_precision),
                "qty_min": float(round_sig(max(spec.lot / 50, 10**-spec.qty_precision), 1)),
            })
        return {"assets": list(assets.values()), "pairs": pairs}


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
        book.reach(depth)
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
            "checksum": book.checksum(),
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

    def _extra(self, step: Step, out: SideUpdate, edge: int | None) -> None:
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


class SideUpdate:
    """One side of an update frame, in Kraken's order (see the module docstring)."""

    __slots__ = ("side", "levels", "changed")

    def __init__(self, side: Side, levels: list[Level], changed: list[int]) -> None:
        self.side = side
        self.levels = levels
        #: the positions in ``levels`` of changed levels (those a repeat may precede)
        self.changed = changed

    def repeat(self, rng: random.Random) -> None:
        """Send one changed level twice, an older qty first: the later one stands."""
        i = rng.choice(self.changed)
        p, q = self.levels[i]
        stale = q + rng.randint(1, 1000)
        self.levels.insert(i, (p, stale if stale <= MAX_SCALED else q - 1))
        self.changed = [j + 1 if j >= i else j for j in self.changed]


def _view_levels(
    side: Side, changes: list[Change], old_edge: int | None, new_edge: int | None
) -> SideUpdate:
    """The levels one side of a view receives for a step, in Kraken's order.

    First each delete inside the old view (best first), each followed by the level that
    enters the view at its edge, republished with its qty: the nearest level beyond the old
    edge that existed before the step. Then the levels changed inside the view, then the new
    levels inside the new view. Applied in that order, trimming to the depth after every
    level or only after the frame, they give the new view: a trim never drops a level the
    view keeps, as every level added after the deletes is better than what it pushes out.
    A republished level a new one pushes out again is left beyond the depth, as Kraken does.
    """
    if not changes:  # the side the step did not move (most steps move one side)
        return SideUpdate(side, [], [])
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
    return SideUpdate(side, out, list(range(first_change, first_change + len(changed))))
