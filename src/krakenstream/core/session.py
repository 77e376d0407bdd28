"""Many pairs' books on one connection: frames in, per-pair verdicts out.

A :class:`BookSession` owns a :class:`~krakenstream.core.parser.Decoder` and one
:class:`~krakenstream.core.book.OrderBook` per pair. It learns depths from subscribe acks and
precisions from instrument frames; when a pair's precision is unknown at its snapshot, it finds
the precision that makes the snapshot's checksum match (Kraken's checksum pins it down), so a
recording without an instrument frame still verifies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from .book import OrderBook, Verdict
from .checksum import checksum as crc_checksum
from .events import (
    BookData,
    BookMessage,
    Event,
    Instrument,
    Level,
    Precision,
    SubscriptionAck,
)
from .numbers import InexactValue, decimals_of, scale_decimal

MAX_INFERRED_PRECISION = 12


@dataclass(frozen=True, slots=True)
class BookResult:
    """What one pair's part of a book frame did."""

    symbol: str
    verdict: Verdict
    book: OrderBook
    snapshot: bool


class BookSession:
    """Decode frames and keep every pair's book; never raises on input."""

    __slots__ = ("decoder", "books", "depths", "default_depth", "depth_override", "precisions")

    def __init__(
        self,
        *,
        default_depth: int = 10,
        depth_override: int | None = None,
        precisions: dict[str, Precision] | None = None,
    ) -> None:
        from .parser import Decoder

        self.precisions: dict[str, Precision] = {} if precisions is None else precisions
        self.decoder = Decoder(self.precisions)
        self.books: dict[str, OrderBook] = {}
        self.depths: dict[str, int] = {}
        self.default_depth = default_depth
        self.depth_override = depth_override

    def depth_for(self, symbol: str) -> int:
        if self.depth_override is not None:
            return self.depth_override
        return self.depths.get(symbol, self.default_depth)

    def receive(self, text: str | bytes) -> tuple[Event, list[BookResult]]:
        """Decode one frame and apply it; returns the event and, for book frames, results."""
        before = self._precision_snapshot_if_instrument(text)
        event = self.decoder.decode(text)
        return event, self.handle(event, before)

    def _precision_snapshot_if_instrument(self, text: str | bytes) -> dict[str, Precision] | None:
        # cheap pre-check: only instrument frames can change precisions
        probe = text[:40] if isinstance(text, str) else text[:40].decode("utf-8", "replace")
        if "instrument" in probe:
            return dict(self.precisions)
        return None

    def handle(
        self, event: Event, precisions_before: dict[str, Precision] | None = None
    ) -> list[BookResult]:
        if type(event) is BookMessage:
            snap = event.type == "snapshot"
            return [self._apply(d, snap) for d in event.data]
        if type(event) is SubscriptionAck:
            if event.success and event.channel == "book" and event.symbol and event.depth:
                self.depths[event.symbol] = event.depth
        elif type(event) is Instrument and precisions_before is not None:
            for ip in event.pairs:
                old = precisions_before.get(ip.symbol)
                book = self.books.get(ip.symbol)
                new = Precision(ip.price_precision, ip.qty_precision)
                if book is not None and old is not None and old != new:
                    # precision changed: the old book's integers mean something else now
                    self.books[ip.symbol] = OrderBook(ip.symbol, book.depth, new)
        return []

    def drop(self, symbol: str) -> None:
        """Forget a pair's book (it was unsubscribed)."""
        self.books.pop(symbol, None)

    def _apply(self, d: BookData, snapshot: bool) -> BookResult:
        book = self.books.get(d.symbol)
        bids, asks, prec = d.bids, d.asks, d.precision
        if prec is None:
            inferred = self._infer(d) if snapshot else None
            if inferred is None:
                if book is None:
                    book = OrderBook(d.symbol, self.depth_for(d.symbol), Precision(0, 0))
                    self.books[d.symbol] = book
                book.frames += 1
                if snapshot:
                    book.mismatches += 1
                    book.void = True
                    return BookResult(d.symbol, Verdict.MISMATCH, book, snapshot)
                book.ignored += 1
                return BookResult(d.symbol, Verdict.IGNORED, book, snapshot)
            prec, bids, asks = inferred
            self.precisions[d.symbol] = prec
        if book is None or (snapshot and book.precision != prec):
            old = book
            book = OrderBook(d.symbol, self.depth_for(d.symbol), prec)
            if old is not None:
                _carry_counts(old, book)
            self.books[d.symbol] = book
        if snapshot:
            verdict = book.apply_snapshot(bids, asks, d.checksum, d.timestamp)
        else:
            verdict = book.apply_update(bids, asks, d.checksum, d.timestamp)
        return BookResult(d.symbol, verdict, book, snapshot)

    def _infer(self, d: BookData) -> tuple[Precision, list[Level], list[Level]] | None:
        raw_b, raw_a = d.raw_bids or [], d.raw_asks or []
        if not raw_b and not raw_a:
            return None
        try:
            min_p = max(decimals_of(p) for p, _ in (*raw_b, *raw_a))
            min_q = max(decimals_of(q) for _, q in (*raw_b, *raw_a))
        except InexactValue:
            return None
        for pp in range(min_p, MAX_INFERRED_PRECISION + 1):
            for qp in range(min_q, MAX_INFERRED_PRECISION + 1):
                bids = _scale(raw_b, pp, qp)
                asks = _scale(raw_a, pp, qp)
                if crc_checksum(_best_asks(asks), _best_bids(bids)) == d.checksum:
                    return Precision(pp, qp), bids, asks
        return None

    def __iter__(self) -> Iterator[OrderBook]:
        return iter(self.books.values())


def _scale(raw: list[tuple[Decimal, Decimal]], pp: int, qp: int) -> list[Level]:
    return [(scale_decimal(p, pp), scale_decimal(q, qp)) for p, q in raw]


def _as_book(levels: list[Level]) -> dict[int, int]:
    book: dict[int, int] = {}
    for p, q in levels:
        if q:
            book[p] = q
        else:
            book.pop(p, None)
    return book


def _best_asks(levels: list[Level]) -> list[Level]:
    return sorted(_as_book(levels).items())[:10]


def _best_bids(levels: list[Level]) -> list[Level]:
    return sorted(_as_book(levels).items(), reverse=True)[:10]


def _carry_counts(old: OrderBook, new: OrderBook) -> None:
    new.frames = old.frames
    new.verified_frames = old.verified_frames
    new.mismatches = old.mismatches
    new.crossed_count = old.crossed_count
    new.ignored = old.ignored
