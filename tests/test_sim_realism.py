"""The simulator's book updates look like Kraken's: the same statistics, within tolerances.

The statistics of :func:`shape_stats` are computed on Kraken's real BTC/USD recording (depth
10, 509 updates) and on the simulator's output at depth 10 (several seeds and pairs, a few
thousand updates each, and one run over the socket). Each side of an update is read as a
string of ``D`` (a delete) and ``U`` (any other level); Kraken's sides are ``U`` 73%, ``DU``
18%, ``DUU`` 5%, ``UU`` 4%, never an update before a delete. A change to the market model
that drifts away from Kraken fails here, whatever our own client tolerates.

Tolerances: the simulator's figures are averages over about 4,000 updates per seed, whose
sampling error is about 0.007 on a share near 0.7; the recording's own error is about 0.02.
Shares of 10% and more must agree within 0.04, smaller shares within 0.025 (the
``TOLERANCE`` table); structural rules (one side per frame, deletes first, a republish after
every delete, a checksum on every frame, levels beyond the depth only where Kraken sends
them) hold exactly or nearly so.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect

from krakenstream.sim.market import DEFAULT_PAIRS, BookStream, Market
from krakenstream.sim.server import SimServer

DEPTH = 10
SEEDS = (1, 2, 3)
PAIRS = ("BTC/USD", "ETH/USD", "DOGE/USD", "SOL/USD")
FRAMES_PER_PAIR = 1000
TS = "2026-01-01T00:00:00.000000Z"

#: the four side shapes Kraken shows, and how far the simulator's shares may be from its
TOLERANCE = {"U": 0.04, "DU": 0.04, "DUU": 0.025, "UU": 0.025}


@dataclass
class ShapeStats:
    """What the update frames of one book stream look like."""

    book_frames: int = 0
    checksummed: int = 0
    updates: int = 0
    one_side: int = 0
    levels: int = 0
    deletes: int = 0
    #: deletes followed at once by the level entering the view at its edge
    republished: int = 0
    #: deletes of a level the view does not hold
    absent_deletes: int = 0
    #: updates that carry one price twice
    repeats: int = 0
    #: levels sent with a qty that are beyond the depth once the frame is applied, and how
    #: many of those are not a republished edge level
    beyond: int = 0
    beyond_not_republished: int = 0
    #: side shapes: D a delete, U any other level
    shapes: Counter[str] = field(default_factory=Counter)
    per_update: Counter[int] = field(default_factory=Counter)

    def share(self, shape: str) -> float:
        return self.shapes[shape] / max(1, sum(self.shapes.values()))

    def levels_share(self, n: int) -> float:
        if n >= 4:
            return sum(v for k, v in self.per_update.items() if k >= 4) / max(1, self.updates)
        return self.per_update[n] / max(1, self.updates)

    @property
    def delete_share(self) -> float:
        return self.deletes / max(1, self.levels)

    @property
    def republish_share(self) -> float:
        return self.republished / max(1, self.deletes)

    @property
    def beyond_per_update(self) -> float:
        return self.beyond / max(1, self.updates)

    @property
    def u_before_d(self) -> int:
        return sum(n for shape, n in self.shapes.items() if "UD" in shape)

    def row(self) -> str:
        """One line for a table: the figures the tests compare."""
        return (f"updates {self.updates:5d} | U {self.share('U'):.3f} DU {self.share('DU'):.3f} "
                f"DUU {self.share('DUU'):.3f} UU {self.share('UU'):.3f} other "
                f"{1 - sum(self.share(s) for s in TOLERANCE):.3f} | U before D "
                f"{self.u_before_d} | levels 1/2/3/4+ {self.levels_share(1):.3f}/"
                f"{self.levels_share(2):.3f}/{self.levels_share(3):.3f}/"
                f"{self.levels_share(4):.3f} | deletes {self.delete_share:.3f} | republished "
                f"{self.republish_share:.3f} | one side {self.one_side / max(1, self.updates):.3f}"
                f" | beyond/update {self.beyond_per_update:.3f} (not republished "
                f"{self.beyond_not_republished}) | repeats {self.repeats} | absent deletes "
                f"{self.absent_deletes} | checksummed {self.checksummed}/{self.book_frames}")


def _num(x: float) -> Decimal:
    return Decimal(repr(x))


def _better(bids: bool, a: Decimal, b: Decimal) -> bool:
    return a > b if bids else a < b


def shape_stats(lines: Iterable[bytes], depth: int = DEPTH) -> ShapeStats:
    """Replay one symbol's book frames as a client holding ``depth`` levels would."""
    stats = ShapeStats()
    book: dict[str, dict[Decimal, Decimal]] = {"bids": {}, "asks": {}}
    for line in lines:
        frame = orjson.loads(line)
        if frame.get("channel") != "book":
            continue
        item = frame["data"][0]
        stats.book_frames += 1
        stats.checksummed += type(item.get("checksum")) is int
        if frame["type"] == "snapshot":
            for name in book:
                book[name] = {_num(lv["price"]): _num(lv["qty"]) for lv in item[name]}
            continue
        stats.updates += 1
        stats.one_side += not (item["bids"] and item["asks"])
        n = len(item["bids"]) + len(item["asks"])
        stats.per_update[n] += 1
        stats.levels += n
        seen: set[Decimal] = set()
        for name in ("bids", "asks"):
            if item[name]:
                book[name] = _side(stats, book[name], item[name], name == "bids", depth, seen)
        stats.repeats += len(seen) < n
    return stats


def _side(
    stats: ShapeStats, view: dict[Decimal, Decimal], levels: list[dict[str, float]],
    bids: bool, depth: int, seen: set[Decimal],
) -> dict[Decimal, Decimal]:
    """Apply one side's levels in order (trimming only after the frame, as Kraken's guide
    says), tagging each; returns the side's new view."""
    cur = dict(view)
    shape = []
    republished: set[Decimal] = set()
    last_was_delete = False
    for lv in levels:
        price, qty = _num(lv["price"]), _num(lv["qty"])
        seen.add(price)
        if qty == 0:
            stats.deletes += 1
            stats.absent_deletes += price not in cur
            cur.pop(price, None)
            shape.append("D")
            last_was_delete = True
            continue
        if last_was_delete and price not in cur and all(_better(bids, p, price) for p in cur):
            stats.republished += 1
            republished.add(price)
        cur[price] = qty
        shape.append("U")
        last_was_delete = False
    stats.shapes["".join(shape)] += 1
    kept = sorted(cur, reverse=bids)[:depth]
    for lv in levels:
        price = _num(lv["price"])
        if lv["qty"] and price not in kept:
            stats.beyond += 1
            stats.beyond_not_republished += price not in republished
    return {p: cur[p] for p in kept}


def simulated(seed: int, symbols: Iterable[str] = PAIRS, frames: int = FRAMES_PER_PAIR,
              kept: int | None = None) -> ShapeStats:
    """The simulator's frames for ``symbols`` at depth 10, as a server with this seed makes
    them (one market, one stream per subscriber). ``kept``: the books keep only the levels
    views of that depth need, as the server's do (None: full books)."""
    market = Market(DEFAULT_PAIRS, seed)
    total = ShapeStats()
    for symbol in symbols:
        stream = BookStream(market.book(symbol, kept), DEPTH, random.Random(f"{seed}:conn:1"))
        lines = [orjson.dumps(stream.snapshot(TS))]
        while len(lines) <= frames:
            frame = stream.update(market.step(symbol), TS)
            if frame is not None:
                lines.append(orjson.dumps(frame))
        _add(total, shape_stats(lines))
    return total


def _add(total: ShapeStats, part: ShapeStats) -> None:
    for name, value in vars(part).items():
        if isinstance(value, Counter):
            getattr(total, name).update(value)
        else:
            setattr(total, name, getattr(total, name) + value)


def assert_like_kraken(sim: ShapeStats, kraken: ShapeStats, label: str) -> None:
    """The simulator's statistics against the recording's, with the module's tolerances."""
    problems = []

    def close(what: str, ours: float, theirs: float, tol: float) -> None:
        if abs(ours - theirs) > tol:
            problems.append(f"{what} {ours:.3f}, Kraken {theirs:.3f} (tolerance {tol})")

    for shape, tol in TOLERANCE.items():
        close(f"side shape {shape}", sim.share(shape), kraken.share(shape), tol)
    other = 1 - sum(sim.share(s) for s in TOLERANCE)
    if other > 0.01:
        problems.append(f"other side shapes {other:.3f} (Kraken: none; at most 0.01)")
    if sim.u_before_d:
        problems.append(f"{sim.u_before_d} sides with an update before a delete (Kraken: 0)")
    for n, tol in ((1, 0.04), (2, 0.04), (3, 0.025)):
        close(f"updates of {n} levels", sim.levels_share(n), kraken.levels_share(n), tol)
    if sim.levels_share(4) > 0.01:
        problems.append(f"updates of 4+ levels {sim.levels_share(4):.3f} (at most 0.01)")
    close("share of deletes", sim.delete_share, kraken.delete_share, 0.025)
    close("deletes followed by the republished edge level", sim.republish_share,
          kraken.republish_share, 0.005)
    close("levels beyond the depth per update", sim.beyond_per_update,
          kraken.beyond_per_update, 0.02)
    if sim.beyond_not_republished:
        problems.append(f"{sim.beyond_not_republished} levels beyond the depth that are not "
                        "a republished edge level (Kraken: none)")
    if sim.absent_deletes:
        problems.append(f"{sim.absent_deletes} deletes of a level the view lacks (Kraken: 0)")
    if sim.one_side < sim.updates * 0.99:
        problems.append(f"only {sim.one_side} of {sim.updates} updates on one side "
                        "(Kraken: every one)")
    if sim.repeats > sim.updates * 0.01:
        problems.append(f"{sim.repeats} of {sim.updates} updates repeat a price "
                        "(Kraken: 1 in 509; at most 1%)")
    if sim.checksummed != sim.book_frames:
        problems.append(f"{sim.book_frames - sim.checksummed} frames without a checksum")
    assert not problems, (f"{label} does not look like Kraken:\n  " + "\n  ".join(problems)
                          + f"\n  sim:    {sim.row()}\n  Kraken: {kraken.row()}")


@pytest.fixture(scope="module")
def kraken(shared_recording: Path) -> ShapeStats:
    return shape_stats(shared_recording.read_bytes().splitlines())


def test_the_recording_is_what_the_rules_say(kraken: ShapeStats) -> None:
    """The figures the simulator's docstring quotes (and this module compares against)."""
    assert kraken.updates == 509 and kraken.checksummed == kraken.book_frames == 510
    assert dict(kraken.shapes) == {"U": 372, "DU": 90, "DUU": 26, "UU": 21}
    assert dict(kraken.per_update) == {1: 372, 2: 111, 3: 26}
    assert kraken.one_side == 509 and kraken.deletes == 116 and kraken.levels == 672
    assert kraken.republished == 116 and kraken.absent_deletes == 0
    assert kraken.beyond == 22 and kraken.beyond_not_republished == 0
    assert kraken.repeats == 1


@pytest.mark.parametrize("seed", SEEDS)
def test_simulated_updates_look_like_kraken_s(kraken: ShapeStats, seed: int) -> None:
    sim = simulated(seed)
    assert sim.updates == len(PAIRS) * FRAMES_PER_PAIR
    assert_like_kraken(sim, kraken, f"the simulator (seed {seed})")


@pytest.mark.parametrize("seed", SEEDS)
def test_books_that_keep_only_what_the_view_needs_look_like_kraken_s_too(
    kraken: ShapeStats, seed: int,
) -> None:
    """A server keeps a book only as deep as its deepest subscriber needs (see
    :mod:`krakenstream.sim.walk`): its frames must look the same."""
    sim = simulated(seed, kept=DEPTH)
    assert sim.updates == len(PAIRS) * FRAMES_PER_PAIR
    assert_like_kraken(sim, kraken, f"the simulator with shallow books (seed {seed})")


@pytest.mark.slow
async def test_over_the_socket_too(kraken: ShapeStats) -> None:
    """What a client receives from a running server: the same shapes."""
    lines: dict[str, list[bytes]] = {}
    async with SimServer(seed=9, rate=400.0) as sim, connect(sim.url, max_queue=None) as ws:
        await ws.send(orjson.dumps({"method": "subscribe", "params": {
            "channel": "book", "symbol": list(PAIRS[:3]), "depth": DEPTH}}).decode())
        async with asyncio.timeout(60):
            while min((len(v) for v in lines.values()), default=0) < 700 or len(lines) < 3:
                raw = await ws.recv(decode=False)
                if raw.startswith(b'{"channel":"book"'):
                    lines.setdefault(orjson.loads(raw)["data"][0]["symbol"], []).append(raw)
    total = ShapeStats()
    for symbol_lines in lines.values():
        _add(total, shape_stats(symbol_lines))
    assert_like_kraken(total, kraken, "the simulator over the socket")
