"""A stand-in feed for the orderbook role: fixed live books, no socket (no tests here)."""

from __future__ import annotations

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
    book is None is not live (stale, resyncing...)."""

    def __init__(self, pairs: list[str]) -> None:
        self.books: dict[str, OrderBook | None] = {p: guide_book(p) for p in pairs}

    @property
    def pairs(self) -> tuple[str, ...]:
        return tuple(self.books)

    def book(self, pair: str) -> OrderBook | None:
        return self.books.get(pair)
