"""Replay a recording of raw Kraken v2 frames through the books and count what happened.

Pure: lines in, per-pair statistics out. The ``kms replay`` command reads the file and renders
the result; the tests and the benchmark call :func:`replay_lines` directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .book import Verdict
from .events import BadFrame
from .session import BookSession


@dataclass
class PairStats:
    frames: int = 0
    verified: int = 0
    mismatches: int = 0
    crossed: int = 0
    ignored: int = 0
    best_bid: str | None = None
    best_ask: str | None = None
    bid_levels: int = 0
    ask_levels: int = 0
    price_precision: int | None = None
    qty_precision: int | None = None
    depth: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "verified": self.verified,
            "mismatches": self.mismatches,
            "crossed": self.crossed,
            "ignored": self.ignored,
            "best_bid": self.best_bid,
            "best_ask": self.best_ask,
            "bid_levels": self.bid_levels,
            "ask_levels": self.ask_levels,
            "price_precision": self.price_precision,
            "qty_precision": self.qty_precision,
            "depth": self.depth,
        }


@dataclass
class ReplayResult:
    pairs: dict[str, PairStats] = field(default_factory=dict)
    lines: int = 0
    bad_frames: int = 0
    #: the first few bad frames' reasons with their line numbers
    bad_samples: list[tuple[int, str]] = field(default_factory=list)

    @property
    def mismatches(self) -> int:
        return sum(p.mismatches for p in self.pairs.values())


def replay_lines(
    lines: Iterable[str | bytes], *, depth: int | None = None, max_samples: int = 5
) -> ReplayResult:
    """Feed every non-blank line to a fresh :class:`BookSession` and collect statistics."""
    session = BookSession(depth_override=depth)
    result = ReplayResult()
    verified, mismatch, crossed, ignored = (
        Verdict.VERIFIED, Verdict.MISMATCH, Verdict.CROSSED, Verdict.IGNORED,
    )
    pairs = result.pairs
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        result.lines += 1
        event, results = session.receive(line)
        if event is not None and type(event) is BadFrame:
            result.bad_frames += 1
            if len(result.bad_samples) < max_samples:
                result.bad_samples.append((lineno, event.reason))
            continue
        for r in results:
            st = pairs.get(r.symbol)
            if st is None:
                st = pairs[r.symbol] = PairStats()
            st.frames += 1
            v = r.verdict
            if v is verified:
                st.verified += 1
            elif v is mismatch:
                st.mismatches += 1
            elif v is crossed:
                st.crossed += 1
            elif v is ignored:
                st.ignored += 1
    for symbol, st in pairs.items():
        book = session.books[symbol]
        bb, ba = book.best_bid, book.best_ask
        st.best_bid = None if bb is None else book.price_text(bb[0])
        st.best_ask = None if ba is None else book.price_text(ba[0])
        st.bid_levels, st.ask_levels = book.bid_levels, book.ask_levels
        st.depth = book.depth
        prec = session.precisions.get(symbol)
        if prec is not None:
            st.price_precision, st.qty_precision = prec.price, prec.qty
    return result
