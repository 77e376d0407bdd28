"""Benchmark: raw frame text → parser → exact book, every checksum verified.

Feeds the recorded Kraken BTC/USD feed and a synthetic multi-pair stream (from the
simulator's market) through :class:`krakenstream.core.session.BookSession` and, in the same
run, through python-kraken-sdk's ``SpotOrderBookClient`` (its websocket base and its REST
precision lookup stubbed out, a fresh client per pass), and prints frames/s and the ratio.

    .venv/bin/python bench/book.py [--passes N] [--quick]

Both sides run on one core (the process is pinned to CPU 0 where the OS allows it), parse
included: ours from bytes with its own decoder, the SDK's with ``json.loads`` as its
websocket connector does before ``on_message``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from krakenstream.core.book import Verdict
from krakenstream.core.checksum import checksum as crc_checksum
from krakenstream.core.session import BookSession

ROOT = Path(__file__).resolve().parent.parent
RECORDING_CANDIDATES = [
    ROOT.parent / "shared" / "data" / "kraken-v2-btcusd-recorded.jsonl",
    ROOT / "tests" / "data" / "kraken-v2-btcusd-recorded.jsonl",
]


# -- inputs ----------------------------------------------------------------------------------


def recorded() -> tuple[list[bytes], dict[str, tuple[int, int]], int]:
    path = next(p for p in RECORDING_CANDIDATES if p.is_file())
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    return lines, {"BTC/USD": (1, 8)}, 10


class _Exchange:
    """A bench-local exchange book for one pair: a random walk around a mid, deeper than the
    subscribed depth, emitting Kraken-style updates for one subscriber (changed levels in
    view, deletes as qty 0, the level that enters the view at the edge republished)."""

    def __init__(self, symbol: str, depth: int, rng: random.Random) -> None:
        self.symbol, self.depth, self.rng = symbol, depth, rng
        self.mid = rng.randint(10_000, 1_000_000)
        self.bids = {self.mid - i: rng.randint(1, 10**9) for i in range(1, depth + 40)}
        self.asks = {self.mid + i: rng.randint(1, 10**9) for i in range(1, depth + 40)}

    def view(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids = sorted(self.bids.items(), reverse=True)[: self.depth]
        asks = sorted(self.asks.items())[: self.depth]
        return bids, asks

    def step(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        rng = self.rng
        before_b, before_a = self.view()
        side = self.bids if rng.random() < 0.5 else self.asks
        sign = -1 if side is self.bids else 1
        offset = min(int(rng.expovariate(1 / (self.depth / 3))) + 1, self.depth + 30)
        price = self.mid + sign * offset
        if price in side and rng.random() < 0.3 and len(side) > self.depth + 5:
            del side[price]
        else:
            side[price] = rng.randint(1, 10**9)
        after_b, after_a = self.view()

        def diff(before: list[tuple[int, int]], after: list[tuple[int, int]]) -> list[
            tuple[int, int]
        ]:
            # deleted from the exchange while in view → qty 0; a level pushed out of view by
            # an insert gets no message (the client truncates); new or changed in view → sent
            old = dict(before)
            gone = [(p, 0) for p in old if p not in self.bids and p not in self.asks]
            return gone + [(p, q) for p, q in after if old.get(p) != q]

        return diff(before_b, after_b), diff(before_a, after_a)


def synthetic(pairs: int, frames: int, depth: int, seed: int = 7) -> tuple[
    list[bytes], dict[str, tuple[int, int]], int
]:
    """An instrument frame, acks, one snapshot per pair, then updates interleaved at random."""
    rng = random.Random(seed)
    precisions = {f"SYN{i:03d}/USD": (rng.randint(1, 6), rng.randint(2, 8)) for i in range(pairs)}
    books = {sym: _Exchange(sym, depth, random.Random(f"{seed}{sym}")) for sym in precisions}
    out = [orjson.dumps({"channel": "instrument", "type": "snapshot", "data": {"pairs": [
        {"symbol": sym, "price_precision": pp, "qty_precision": qp}
        for sym, (pp, qp) in precisions.items()]}})]
    ts = "2026-11-25T12:00:00.000000Z"

    def levels(sym: str, lv: list[tuple[int, int]]) -> list[dict[str, float]]:
        pp, qp = precisions[sym]
        return [{"price": p / 10**pp, "qty": q / 10**qp} for p, q in lv]

    def frame(sym: str, kind: str, bids: list[tuple[int, int]], asks: list[tuple[int, int]],
              ) -> bytes:
        vb, va = books[sym].view()
        item = {"symbol": sym, "bids": levels(sym, bids), "asks": levels(sym, asks),
                "checksum": crc_checksum(va[:10], vb[:10]), "timestamp": ts}
        return orjson.dumps({"channel": "book", "type": kind, "data": [item]})

    for sym in books:
        out.append(orjson.dumps({"method": "subscribe", "req_id": 1, "success": True, "result": {
            "channel": "book", "depth": depth, "snapshot": True, "symbol": sym}}))
        out.append(frame(sym, "snapshot", *books[sym].view()))
    symbols = list(books)
    while len(out) < frames:
        sym = rng.choice(symbols)
        bids, asks = books[sym].step()
        if bids or asks:
            out.append(frame(sym, "update", bids, asks))
    return out, precisions, depth


# -- ours ------------------------------------------------------------------------------------


def run_ours(lines: list[bytes]) -> tuple[float, int, int]:
    """Seconds for one pass over every line, the book frames, and how many verified."""
    session = BookSession()
    receive = session.receive
    t0 = time.perf_counter()
    for line in lines:
        receive(line)
    elapsed = time.perf_counter() - t0
    book_frames = sum(b.frames for b in session.books.values())
    verified = sum(b.verified_frames for b in session.books.values())
    return elapsed, book_frames, verified


def check_ours(lines: list[bytes]) -> None:
    session = BookSession()
    for line in lines:
        _, results = session.receive(line)
        for r in results:
            if r.verdict is not Verdict.VERIFIED:
                raise SystemExit(f"our book did not verify a frame for {r.symbol}: {r.verdict}")


# -- python-kraken-sdk -----------------------------------------------------------------------

#: mismatches the SDK's client reported (it should report none on these streams)
SDK_MISMATCHES = [0]


def make_sdk_client(precisions: dict[str, tuple[int, int]], depth: int) -> Any:
    """A SpotOrderBookClient with no websocket and no REST: only its book logic runs."""
    from kraken.spot import orderbook as ob
    from kraken.spot.ws_client import SpotWSClient

    class StubMarket:
        def get_asset_pairs(self, pair: str) -> dict[str, dict[str, int]]:
            pp, qp = precisions[pair]
            return {pair: {"pair_decimals": pp, "lot_decimals": qp}}

    class Client(ob.SpotOrderBookClient):  # type: ignore[misc]
        async def on_book_update(self, pair: str, message: dict[str, Any]) -> None:
            if "error" in message:
                SDK_MISMATCHES[0] += 1

        async def remove_book(self, pairs: list[str]) -> None:
            return None

        async def add_book(self, pairs: list[str]) -> None:
            return None

    async def no_sleep(_seconds: float) -> None:
        return None

    original_init = SpotWSClient.__init__
    original_market = ob.Market
    SpotWSClient.__init__ = lambda self, *a, **k: None  # type: ignore[method-assign]
    ob.Market = StubMarket
    ob.asyncio_sleep = no_sleep  # a mismatch would otherwise sleep 3 s before resubscribing
    try:
        client = Client(depth=depth)
    finally:
        SpotWSClient.__init__ = original_init  # type: ignore[method-assign]
        ob.Market = original_market
    return client


def run_sdk(lines: list[bytes], precisions: dict[str, tuple[int, int]], depth: int) -> float:
    client = make_sdk_client(precisions, depth)
    on_message = client.on_message
    loads = json.loads

    async def feed() -> float:
        t0 = time.perf_counter()
        for line in lines:
            await on_message(loads(line))
        return time.perf_counter() - t0

    return asyncio.run(feed())


def sdk_available() -> bool:
    try:
        import kraken.spot.orderbook  # noqa: F401
    except ImportError:
        return False
    return True


# -- driver ----------------------------------------------------------------------------------


def best_of(passes: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(passes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passes", type=int, default=30, help="passes per measurement (best)")
    parser.add_argument("--quick", action="store_true", help="fewer passes and frames")
    args = parser.parse_args()
    passes = 5 if args.quick else args.passes
    try:
        os.sched_setaffinity(0, {0})
        pinned = "pinned to CPU 0"
    except (AttributeError, OSError):
        pinned = "not pinned"

    n_synth = 20_000 if args.quick else 100_000
    cases = [("recorded BTC/USD, depth 10", *recorded())]
    try:
        cases.append((f"synthetic 20 pairs, depth 10, {n_synth} frames",
                       *synthetic(20, n_synth, 10)))
        cases.append((f"synthetic 20 pairs, depth 100, {n_synth} frames",
                       *synthetic(20, n_synth, 100)))
    except ImportError as exc:  # pragma: no cover
        print(f"(synthetic streams skipped: {exc})", file=sys.stderr)

    have_sdk = sdk_available()
    print(f"bench/book.py — Python {sys.version.split()[0]}, {os.cpu_count()} cores, {pinned}, "
          f"best of {passes} passes")
    header = f"{'stream':48s} {'book frames':>11s} {'ours f/s':>11s} {'sdk f/s':>10s} {'ratio':>7s}"
    print(header)
    print("-" * len(header))
    for name, lines, precisions, depth in cases:
        check_ours(lines)
        _, book_frames, verified = run_ours(lines)
        assert verified == book_frames, "every frame must verify"
        ours = best_of(passes, lambda lines=lines: run_ours(lines)[0])
        ours_fps = book_frames / ours
        if have_sdk:
            sdk_passes = max(1, passes // 3)
            sdk = best_of(sdk_passes,
                          lambda lines=lines, p=precisions, d=depth: run_sdk(lines, p, d))
            sdk_fps = book_frames / sdk
            sdk_txt, ratio = f"{sdk_fps:10,.0f}", f"{ours_fps / sdk_fps:6.1f}x"
        else:
            sdk_txt, ratio = f"{'n/a':>10s}", "   n/a"
        print(f"{name:48s} {book_frames:11,d} {ours_fps:11,.0f} {sdk_txt} {ratio}")
    if have_sdk:
        print(f"(checksum mismatches the SDK reported during its runs: {SDK_MISMATCHES[0]})")


if __name__ == "__main__":
    main()
