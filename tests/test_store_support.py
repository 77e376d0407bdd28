"""Snapshots for the history store tests (helpers only, no tests): synthetic and recorded."""

from __future__ import annotations

from pathlib import Path

from krakenstream.core.book import Verdict
from krakenstream.core.session import BookSession
from krakenstream.core.snapshot import Snapshot

#: 2023-11-14T22:13:20Z, a round epoch-ms second
T0 = 1_700_000_000_000


def synthetic(pair: str, ts: int, seq: int = 0, *, depth: int = 10) -> Snapshot:
    """A realistic depth-``depth`` snapshot whose levels move with ``ts`` (BTC-like precisions)."""
    mid = 30_000_00 + (ts // 1000) % 5_000  # price precision 1: 30,000.0 + drift
    bids = tuple((mid - 1 - i, 10_000_000 + 7_919 * ((ts // 1000 + i) % 997)) for i in range(depth))
    asks = tuple((mid + 1 + i, 20_000_000 + 104_729 * ((ts // 1000 + i) % 991))
                 for i in range(depth))
    return Snapshot(
        pair=pair,
        ts=ts,
        exchange_ts="2023-07-30T15:30:49.008834Z",
        seq=seq,
        price_precision=1,
        qty_precision=8,
        bids=bids,
        asks=asks,
        checksum=(ts * 2_654_435_761) % 2**32,
    )


def series(pair: str, n: int, *, start: int = T0, step: int = 1000) -> list[Snapshot]:
    """``n`` consecutive one-second snapshots of ``pair``."""
    return [synthetic(pair, start + i * step, i) for i in range(n)]


def recorded(recording: Path, *, start: int = T0) -> list[Snapshot]:
    """One snapshot per verified frame of a real Kraken recording, one second apart."""
    session = BookSession()
    out: list[Snapshot] = []
    for line in recording.read_text().splitlines():
        _, results = session.receive(line)
        for r in results:
            if r.verdict is Verdict.VERIFIED:
                out.append(Snapshot.from_book(r.book, ts=start + 1000 * len(out), seq=len(out)))
    return out
