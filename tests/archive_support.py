"""Realistic snapshots for the archive tests and bench (helpers only, no tests).

Books come from the simulator's random walk (:mod:`krakenstream.sim.market`): a few book
updates a second per pair, snapshotted once a second at depth 10, with Kraken-like exchange
timestamps, so sizes measured on them mean something.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

from krakenstream.core.snapshot import Snapshot
from krakenstream.sim.market import DEFAULT_PAIRS, Market

#: 2023-11-14T00:00:00Z: a UTC midnight, so a day of snapshots fills one date partition
DAY0 = 1_699_920_000_000


def sim_snapshots(pair: str, n: int, *, start: int = DAY0, step: int = 1000, rate: float = 10.0,
                  depth: int = 10, seed: int = 1, origin: str = "ob1",
                  first_seq: int = 0) -> Iterator[Snapshot]:
    """``n`` consecutive snapshots of ``pair``, ``step`` ms apart, the book moved by about
    ``rate`` simulated updates a second in between."""
    market = Market(DEFAULT_PAIRS, seed=seed)
    book = market.book(pair)
    spec = market.specs[pair]
    rng = random.Random(f"{seed}:{pair}:timing")
    per_step = rate * step / 1000
    for i in range(n):
        updates = sum(1 for _ in range(int(2 * per_step) + 1) if rng.random() < 0.5)
        for _ in range(updates):
            book.step()
        ts = start + i * step
        us = ts * 1000 - rng.randrange(step * 1000)
        exchange_ts = datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        bids, asks = book.top(depth)
        yield Snapshot(
            pair=pair, ts=ts, exchange_ts=exchange_ts, seq=first_seq + i,
            price_precision=spec.price_precision, qty_precision=spec.qty_precision,
            bids=tuple(bids), asks=tuple(asks), checksum=book.checksum(), origin=origin,
        )
