"""Many pairs' books on one connection: frames in, per-pair verdicts out.

A :class:`BookSession` owns a :class:`~krakenstream.core.parser.Decoder` and one
:class:`~krakenstream.core.book.OrderBook` per pair. It learns depths from subscribe acks and
precisions from instrument frames; when a pair's precision is unknown at its full book (Kraken's
``snapshot`` frame), it finds the precision that makes that frame's checksum match (Kraken's
checksum pins it down), so a recording without an instrument frame still verifies.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Literal, NamedTuple

import msgspec

from .book import MIN_DEPTH, OrderBook, Verdict
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
from .parser import Decoder, NeedsExact

MAX_INFERRED_PRECISION = 12

#: a float's scaled value is trusted below 10**15 only: any decimal of at most 15 significant
#: digits comes back exactly from its nearest double (DBL_DIG), and then ``round(f * scale)``
#: errs by under 0.25. Between 10**15 and 2**53 two decimals can share a double
#: (829452312479088.3 and .2 at 0.1), so the check by dividing back passes on a wrong value;
#: such values take the exact path.
_LIMIT = 10**15
#: an empty side on the hot path (never mutated)
_NONE: list[Level] = []


class BookResult(NamedTuple):
    """What one pair's part of a book frame did."""

    symbol: str
    verdict: Verdict
    book: OrderBook
    #: the frame carried the whole book (Kraken's ``snapshot``), not an update
    full_book: bool


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

    def receive(self, text: str | bytes) -> tuple[Event | None, list[BookResult]]:
        """Decode one frame and apply it.

        Returns ``(event, results)``. For a book frame, ``results`` holds one
        :class:`BookResult` per pair in it and ``event`` is None: the hot path applies the
        levels without building an event (the frame's effect is in the books). For every
        other frame ``event`` is the decoded event (a :class:`BadFrame` for garbage) and
        ``results`` is empty.

        The hot path decodes straight into typed structs (msgspec validates the shape and
        the number types in C), then converts and applies in one pass; anything it does not
        expect (other channels, full books, unknown or void books, values needing the exact
        decoder) falls through to the general :class:`~krakenstream.core.parser.Decoder`.
        """
        try:
            frame = _hot_decode(text)
        except (msgspec.ValidationError, msgspec.DecodeError):
            frame = None
        if frame is not None and frame.type == "update" and len(frame.data) == 1:
            item = frame.data[0]
            book = self.books.get(item.symbol)
            if (
                book is not None
                and not book.void
                and self.precisions.get(item.symbol) is book.precision
            ):
                ps = book.pscale
                qs = book.qscale
                try:
                    bids = _scale_hot(item.bids, ps, qs) if item.bids else _NONE
                    asks = _scale_hot(item.asks, ps, qs) if item.asks else _NONE
                except NeedsExact:
                    pass  # the general path re-decodes exactly
                else:
                    verdict = book._apply(bids, asks, item.checksum, item.timestamp)
                    return None, [_new_result(BookResult, (item.symbol, verdict, book, False))]
        event = self.decoder.decode(text)
        if type(event) is BookMessage:
            full = event.is_full_book
            return None, [self._apply(d, full) for d in event.data]
        return event, self.handle(event)

    def handle(self, event: Event) -> list[BookResult]:
        """Apply an already decoded event (see :meth:`receive`)."""
        if type(event) is BookMessage:
            full = event.is_full_book
            return [self._apply(d, full) for d in event.data]
        if type(event) is SubscriptionAck:
            depth = event.depth
            if event.success and event.channel == "book" and event.symbol and depth:
                # an ack is input too: a depth no book can have is ignored, not raised on
                if depth >= MIN_DEPTH:
                    self.depths[event.symbol] = depth
        elif type(event) is Instrument:
            for ip in event.pairs:
                book = self.books.get(ip.symbol)
                new = Precision(ip.price_precision, ip.qty_precision)
                # one shared Precision object per pair: the hot path in receive() takes a
                # frame only while the book's precision IS the session's
                shared = self.precisions.get(ip.symbol)
                if shared == new:
                    new = shared
                else:
                    self.precisions[ip.symbol] = new
                if book is not None and book.precision != new:
                    # precision changed: the old book's integers mean something else now;
                    # a fresh void book waits for the next full book
                    fresh = OrderBook(ip.symbol, book.depth, new)
                    _carry_counts(book, fresh)
                    self.books[ip.symbol] = fresh
        return []

    def drop(self, symbol: str) -> None:
        """Forget a pair's book (it was unsubscribed)."""
        self.books.pop(symbol, None)

    def _apply(self, d: BookData, full_book: bool) -> BookResult:
        book = self.books.get(d.symbol)
        bids, asks, prec = d.bids, d.asks, d.precision
        if prec is None:
            inferred = self._infer(d) if full_book else None
            if inferred is None:
                if book is None:
                    book = OrderBook(d.symbol, self.depth_for(d.symbol), Precision(0, 0))
                    self.books[d.symbol] = book
                book.frames += 1
                if full_book:
                    book.mismatches += 1
                    book.void = True
                    return BookResult(d.symbol, Verdict.MISMATCH, book, full_book)
                book.ignored += 1
                return BookResult(d.symbol, Verdict.IGNORED, book, full_book)
            prec, bids, asks = inferred
            self.precisions[d.symbol] = prec
        if book is None or book.precision != prec:
            old = book
            book = OrderBook(d.symbol, self.depth_for(d.symbol), prec)
            if old is not None:
                _carry_counts(old, book)
            self.books[d.symbol] = book
        if full_book:
            verdict = book.apply_full_book(bids, asks, d.checksum, d.timestamp)
        else:
            verdict = book.apply_update(bids, asks, d.checksum, d.timestamp)
        return BookResult(d.symbol, verdict, book, full_book)

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


class _HotLevel(msgspec.Struct):
    price: float
    qty: float


class _HotItem(msgspec.Struct):
    symbol: str
    checksum: Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)]
    bids: list[_HotLevel] = []
    asks: list[_HotLevel] = []
    timestamp: str | None = None


class _HotFrame(msgspec.Struct):
    """Only book frames fit (``channel`` must be ``"book"``); anything else fails to decode."""

    channel: Literal["book"]
    type: str
    data: list[_HotItem]


_hot_decode = msgspec.json.Decoder(_HotFrame).decode


def _scale_hot(raw: list[_HotLevel], ps: int, qs: int) -> list[Level]:
    """Scale the levels of a hot-path frame; raises NeedsExact on any doubt.

    A value off the pair's precision, too large for a float to hold exactly, or a zero or
    negative price sends the frame to the general path, which decodes it exactly and names
    what is wrong.
    """
    out = []
    for lv in raw:
        p = lv.price
        q = lv.qty
        pn = round(p * ps)
        qn = round(q * qs)
        if pn / ps != p or qn / qs != q or not 0 < pn < _LIMIT or not 0 <= qn < _LIMIT:
            raise NeedsExact
        out.append((pn, qn))
    return out


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


_new_result = tuple.__new__
