"""Benchmark: the orderbook role's publish tick, per snapshot, and how long it holds the loop.

Issue 12 asks one daemon for 3,000 pairs at 3 book updates a second; each second the
orderbook role's tick builds one snapshot per pair (``Snapshot.from_book``), counts it
(``kms_snapshots_published``) and hands it to the bus. This runs that very code,
``OrderbookRole.publish_tick``, over N live depth-10 books (exact, checksum-verified
``OrderBook``s behind a stand-in for the feed: no socket, no simulator), publishing on the
in-process bus to an ``analysis`` group member that takes 500 a batch as the history writer
does. Between two ticks every book takes ``--updates`` verified frames (a changed quantity
on either side), outside the timing, so no tick sees the books of the last one.

Per tick (median and best over ``--ticks`` ticks, after two warm-up ticks):

* ``tick_us_per_snapshot``: the tick's wall time over the snapshots it published;
* ``tick_ms``: the tick's wall time;
* ``first_batch_ms``: from the tick's start to the reader holding its first snapshots (the
  history writer can start storing no earlier);
* ``longest_hold_ms``: the longest the tick kept the event loop from any other task;

and, alone over the same books, ``from_book_us``: ``Snapshot.from_book`` per snapshot.
The garbage collector runs as in the daemon (its collections are part of the cost).

    .venv/bin/python bench/tick.py [--pairs 3000] [--ticks 20] [--updates 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass

from krakenstream.bus.memory import MemoryBus
from krakenstream.config import load_settings
from krakenstream.core.book import OrderBook, Verdict
from krakenstream.core.checksum import checksum
from krakenstream.core.events import Level, Precision
from krakenstream.core.snapshot import Snapshot
from krakenstream.daemon.orderbook import OrderbookRole

T0 = 1_764_000_000_000
DEPTH = 10


class _Market:
    """N pairs' books and the frames that move them (quantities only, so each side keeps
    its ten prices and every frame's checksum is computed from the levels it leaves)."""

    def __init__(self, pairs: int, seed: int = 12) -> None:
        self.rng = random.Random(seed)
        self.books: dict[str, OrderBook] = {}
        for i in range(pairs):
            pair = f"SYN{i + 1:04d}/USD"
            mid = self.rng.randint(10_000, 10_000_000)
            bids = [(mid - 1 - k, self.rng.randint(1, 10**9)) for k in range(DEPTH)]
            asks = [(mid + 1 + k, self.rng.randint(1, 10**9)) for k in range(DEPTH)]
            book = OrderBook(pair, DEPTH, Precision(2, 8))
            verdict = book.apply_full_book(bids, asks, checksum(asks, bids),
                                           "2026-12-01T12:00:00.000000Z")
            assert verdict is Verdict.VERIFIED, verdict
            self.books[pair] = book

    def move(self, updates: int) -> None:
        rng = self.rng
        for book in self.books.values():
            for _ in range(updates):
                bids, asks = book.bids(), book.asks()
                side = bids if rng.random() < 0.5 else asks
                k = rng.randrange(len(side))
                side[k] = (side[k][0], rng.randint(1, 10**9))
                change: list[Level] = [side[k]]
                frame = (change, []) if side is bids else ([], change)
                verdict = book.apply_update(*frame, checksum(asks, bids))
                assert verdict is Verdict.VERIFIED, verdict


class _Feed:
    """What the orderbook role reads of a feed: its pairs, and each live book."""

    def __init__(self, books: dict[str, OrderBook]) -> None:
        self.books = books

    @property
    def pairs(self) -> tuple[str, ...]:
        return tuple(self.books)

    def book(self, pair: str) -> OrderBook | None:
        book = self.books.get(pair)
        return book if book is not None and book.valid else None


@dataclass
class Result:
    pairs: int
    ticks: int
    updates_per_tick: int
    tick_us_per_snapshot_median: float
    tick_us_per_snapshot_best: float
    tick_ms_median: float
    tick_ms_max: float
    first_batch_ms_median: float
    longest_hold_ms_median: float
    longest_hold_ms_max: float
    from_book_us_median: float


async def _measure(args: argparse.Namespace, market: _Market) -> dict[str, list[float]]:
    kraken = load_settings(env={"KMS_KRAKEN_PAIRS": "SYN0001/USD"}).kraken
    bus = MemoryBus()
    role = OrderbookRole(kraken, bus, feed=_Feed(market.books))  # type: ignore[arg-type]
    first: list[float] = []
    got = 0
    want = 0
    all_in = asyncio.Event()
    holds: list[float] = []

    async def reader() -> None:
        nonlocal got
        async with bus.subscribe("analysis") as sub:
            while True:
                batch = await sub.get_batch(500, timeout=5)
                if batch and not first:
                    first.append(time.perf_counter())
                got += len(batch)
                await sub.commit()
                if got >= want:
                    all_in.set()

    async def probe(stop: asyncio.Event) -> None:
        # runs at every turn of the loop: the longest gap between two turns is the longest
        # stretch the tick kept every other task waiting
        last, worst = time.perf_counter(), 0.0
        while not stop.is_set():
            await asyncio.sleep(0)
            now = time.perf_counter()
            worst, last = max(worst, now - last), now
        holds.append(worst)

    figures: dict[str, list[float]] = {"us": [], "ms": [], "first_ms": [], "hold_ms": []}
    async with bus:
        reading = asyncio.create_task(reader())
        await asyncio.sleep(0)
        for k in range(args.ticks + 2):
            market.move(args.updates)
            first.clear()
            holds.clear()
            all_in.clear()
            want = got + len(market.books)
            stop = asyncio.Event()
            probing = asyncio.create_task(probe(stop))
            await asyncio.sleep(0)
            start = time.perf_counter()
            n = await role.publish_tick(T0 + 1000 * k)
            took = time.perf_counter() - start
            stop.set()
            await probing
            await asyncio.wait_for(all_in.wait(), 10)
            assert n == len(market.books) and got == want, (n, got, want)
            if k < 2:
                continue  # warm-up
            figures["us"].append(took / n * 1e6)
            figures["ms"].append(took * 1e3)
            figures["first_ms"].append((first[0] - start) * 1e3)
            figures["hold_ms"].append(holds[0] * 1e3)
        reading.cancel()
    return figures


def _from_book(market: _Market, rounds: int) -> list[float]:
    books = list(market.books.values())
    out: list[float] = []
    for r in range(rounds):
        market.move(1)
        start = time.perf_counter()
        keep = [Snapshot.from_book(b, ts=T0 + r, seq=r + 1, origin="bench000") for b in books]
        out.append((time.perf_counter() - start) / len(keep) * 1e6)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3000)
    ap.add_argument("--ticks", type=int, default=20, help="ticks measured (after 2 warm-up)")
    ap.add_argument("--updates", type=int, default=3, help="frames per book between ticks")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    market = _Market(args.pairs)
    fig = asyncio.run(_measure(args, market))
    fb = _from_book(market, 10)
    med = statistics.median
    result = Result(
        pairs=args.pairs, ticks=args.ticks, updates_per_tick=args.updates,
        tick_us_per_snapshot_median=round(med(fig["us"]), 2),
        tick_us_per_snapshot_best=round(min(fig["us"]), 2),
        tick_ms_median=round(med(fig["ms"]), 1),
        tick_ms_max=round(max(fig["ms"]), 1),
        first_batch_ms_median=round(med(fig["first_ms"]), 1),
        longest_hold_ms_median=round(med(fig["hold_ms"]), 1),
        longest_hold_ms_max=round(max(fig["hold_ms"]), 1),
        from_book_us_median=round(med(fb), 2),
    )
    if args.json:
        print(json.dumps(asdict(result)))
        return
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, "
          f"{' '.join(['bench/tick.py', *sys.argv[1:]])}")
    for key, value in asdict(result).items():
        print(f"  {key:28s} {value}")


if __name__ == "__main__":
    main()
