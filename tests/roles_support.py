"""A stand-in feed for the orderbook role: fixed live books, no socket (no tests here)."""

from __future__ import annotations

import contextlib
from decimal import Decimal

from krakenstream.core.book import OrderBook
from krakenstream.core.events import Precision
from test_core_checksum import GUIDE_ASKS, GUIDE_BIDS, GUIDE_CHECKSUM


def guide_book(pair: str) -> OrderBook:
    """Kraken's documented BTC/USD book (checksum verified), under any pair name."""
    book = OrderBook(pair, 10, Precision(1, 8))

    def scale(levels: list[tuple[str, str]]) -> list[tuple[int, int]]:
        return [(int(Decimal(p) * 10), int(Decimal(q) * 10**8)) for p, q in levels]

    book.apply_full_book(scale(GUIDE_BIDS), scale(GUIDE_ASKS), GUIDE_CHECKSUM,
                        "2023-07-30T15:29:58.343415Z")
    return book


class StaticFeed:
    """What the orderbook role reads of a feed: its pairs and their live books. A pair whose
    book is None is not live (stale, resyncing...). Pairs (no patterns) are tracked and
    untracked at once, as the feed pool answers ``track``/``untrack`` (the pairs added or
    removed), with a live book from the start."""

    def __init__(self, pairs: list[str]) -> None:
        self.books: dict[str, OrderBook | None] = {p: guide_book(p) for p in pairs}

    @property
    def pairs(self) -> tuple[str, ...]:
        return tuple(self.books)

    @property
    def patterns(self) -> tuple[str, ...]:
        return ()

    def book(self, pair: str) -> OrderBook | None:
        return self.books.get(pair)

    def held(self) -> contextlib.AbstractContextManager[None]:
        """The pool's hold on applying frames: nothing to hold here (no frames)."""
        return contextlib.nullcontext()

    def would_track(self, selector: str) -> int:
        return len(self.books | {selector: None})

    async def track(self, pair: str) -> list[str]:
        if pair in self.books:
            return []
        self.books[pair] = guide_book(pair)
        return [pair]

    async def untrack(self, pair: str) -> list[str]:
        if pair not in self.books:
            return []
        del self.books[pair]
        return [pair]
