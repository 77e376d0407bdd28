"""A naive reference order book for the tests: Decimal values, a plain dict per side, sorted
on every read, checksum formatted from Decimal text. Slow and obviously right, so the fast
book can be checked against it."""

from __future__ import annotations

import zlib
from decimal import Decimal


def fixed_token(value: Decimal, precision: int) -> str:
    """Kraken's checksum token: fixed point at the precision, point removed, zeros stripped."""
    text = f"{value:.{precision}f}".replace(".", "").lstrip("0")
    return text


class RefBook:
    def __init__(self, depth: int, price_precision: int, qty_precision: int,
                 truncate: bool = True) -> None:
        self.depth = depth
        self.pp = price_precision
        self.qp = qty_precision
        self.truncate = truncate
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def apply(self, bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]],
              full_book: bool = False) -> None:
        if full_book:
            self.bids.clear()
            self.asks.clear()
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                if qty == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        if self.truncate:
            for side, best_first in ((self.bids, self.sorted_bids()),
                                     (self.asks, self.sorted_asks())):
                for price, _ in best_first[self.depth:]:
                    del side[price]

    def sorted_bids(self) -> list[tuple[Decimal, Decimal]]:
        return sorted(self.bids.items(), reverse=True)

    def sorted_asks(self) -> list[tuple[Decimal, Decimal]]:
        return sorted(self.asks.items())

    def checksum(self) -> int:
        text = "".join(
            fixed_token(p, self.pp) + fixed_token(q, self.qp)
            for p, q in self.sorted_asks()[:10]
        ) + "".join(
            fixed_token(p, self.pp) + fixed_token(q, self.qp)
            for p, q in self.sorted_bids()[:10]
        )
        return zlib.crc32(text.encode())
