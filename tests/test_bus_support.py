"""Helpers shared by the bus tests: snapshots to publish and bounded waits (no tests here)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from krakenstream.bus import BusSubscription
from krakenstream.core.snapshot import Snapshot

T0 = 1_764_000_000_000  # epoch ms, 2025-11-24T16:00:00Z
PAIRS = ("BTC/USD", "ETH/USD", "SOL/EUR")


def snap(pair: str = "BTC/USD", seq: int = 0) -> Snapshot:
    """A distinct, valid snapshot per (pair, seq): three levels a side, exact decimals."""
    base = 9_000_000 + 1_000 * PAIRS.index(pair) if pair in PAIRS else 5_000_000
    mid = base + seq
    return Snapshot(
        pair=pair,
        ts=T0 + 1_000 * seq,
        exchange_ts=f"2025-11-24T16:00:{seq % 60:02d}.123456Z",
        seq=seq,
        price_precision=1,
        qty_precision=8,
        bids=tuple((mid - i, 10_000_000 * (i + 1) + seq) for i in range(3)),
        asks=tuple((mid + 1 + i, 20_000_000 * (i + 1) + seq) for i in range(3)),
        checksum=(seq * 2_654_435_761) % 2**32,
        gap_before=seq == 0,
    )


def interleaved(n: int, pairs: tuple[str, ...] = PAIRS) -> list[Snapshot]:
    """``n`` snapshots per pair, published second by second across the pairs."""
    return [snap(pair, seq) for seq in range(n) for pair in pairs]


async def collect(sub: BusSubscription, n: int, within: float = 15.0) -> list[Snapshot]:
    """Read until ``n`` snapshots arrived or ``within`` seconds passed; answer what came."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    out: list[Snapshot] = []
    while len(out) < n:
        left = deadline - loop.time()
        if left <= 0:
            break
        out.extend(await sub.get_batch(max_items=500, timeout=min(0.5, left)))
    return out


async def drain(sub: BusSubscription, quiet: float) -> list[Snapshot]:
    """Everything that arrives until nothing has for ``quiet`` seconds (bounded: 200 reads)."""
    out: list[Snapshot] = []
    for _ in range(200):
        batch = await sub.get_batch(max_items=500, timeout=quiet)
        if not batch:
            break
        out.extend(batch)
    return out


async def wait_until(check: Callable[[], bool], within: float = 15.0) -> bool:
    """Poll ``check`` every 20 ms for up to ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True
