"""An exact, checksum-verified order book for one pair.

Levels are scaled integers keyed by exact price. Each side is a dict (price → qty) plus a
sorted list of keys; bids are keyed by the negated price so both lists run best-first in
ascending order. A frame is applied level by level in the order sent (so the same price twice:
the later one stands), ``qty == 0`` deletes (absent price: no-op), then each side is cut to the
subscribed depth, then the CRC32 is checked. A mismatch voids the book until the next snapshot;
a crossed book (best bid >= best ask) is flagged and also voids it: either way nothing may be
published from it.

The checksum text of each side's top 10 is cached: a frame that only touches levels below the
10th reuses it, which is most frames on a busy pair.
"""

from __future__ import annotations

import enum
import zlib
from bisect import bisect_left, insort
from decimal import Decimal

from .events import Level, Precision
from .numbers import format_scaled, to_decimal


class Verdict(enum.Enum):
    """What one frame did to the book."""

    VERIFIED = "verified"  #: applied, checksum matches, not crossed
    MISMATCH = "mismatch"  #: applied, checksum differs: the book is now void
    CROSSED = "crossed"  #: applied, checksum matches, but best bid >= best ask: void
    IGNORED = "ignored"  #: an update while the book is void (waiting for a snapshot)


_INF = float("inf")


class OrderBook:
    """One pair's book at a subscribed depth and a fixed precision."""

    __slots__ = (
        "symbol",
        "depth",
        "precision",
        "_bids",
        "_bid_keys",
        "_asks",
        "_ask_keys",
        "_bid_tok",
        "_ask_tok",
        "checksum",
        "computed_checksum",
        "void",
        "crossed",
        "timestamp",
        "frames",
        "verified_frames",
        "mismatches",
        "crossed_count",
        "ignored",
        "version",
    )

    def __init__(self, symbol: str, depth: int, precision: Precision) -> None:
        if depth < 10:
            raise ValueError("depth must be at least 10 (the checksum covers 10 levels)")
        self.symbol = symbol
        self.depth = depth
        self.precision = precision
        self._bids: dict[int, int] = {}  # -price -> qty
        self._bid_keys: list[int] = []  # -price ascending = best bid first
        self._asks: dict[int, int] = {}
        self._ask_keys: list[int] = []
        self._bid_tok: bytes | None = None
        self._ask_tok: bytes | None = None
        #: the checksum the exchange sent with the last applied frame
        self.checksum: int | None = None
        #: the checksum this book computed for the last applied frame
        self.computed_checksum: int | None = None
        #: True until a snapshot, and after a mismatch or a crossed book
        self.void = True
        self.crossed = False
        self.timestamp: str | None = None
        self.frames = 0
        self.verified_frames = 0
        self.mismatches = 0
        self.crossed_count = 0
        self.ignored = 0
        #: bumped on every applied frame; lets callers see whether anything happened
        self.version = 0

    # -- applying frames -----------------------------------------------------------------

    def apply_snapshot(
        self, bids: list[Level], asks: list[Level], checksum: int, timestamp: str | None = None
    ) -> Verdict:
        self._bids.clear()
        self._bid_keys.clear()
        self._asks.clear()
        self._ask_keys.clear()
        self._bid_tok = self._ask_tok = None
        self.void = False
        self.crossed = False
        return self._apply(bids, asks, checksum, timestamp)

    def apply_update(
        self, bids: list[Level], asks: list[Level], checksum: int, timestamp: str | None = None
    ) -> Verdict:
        if self.void:
            self.frames += 1
            self.ignored += 1
            return Verdict.IGNORED
        return self._apply(bids, asks, checksum, timestamp)

    def _apply(
        self, bids: list[Level], asks: list[Level], checksum: int, timestamp: str | None
    ) -> Verdict:
        self.frames += 1
        self.version += 1
        if timestamp is not None:
            self.timestamp = timestamp
        depth = self.depth
        if bids:
            if _apply_side(self._bids, self._bid_keys, bids, -1, depth):
                self._bid_tok = None
        if asks:
            if _apply_side(self._asks, self._ask_keys, asks, 1, depth):
                self._ask_tok = None
        computed = self._compute_checksum()
        self.checksum = checksum
        self.computed_checksum = computed
        if computed != checksum:
            self.mismatches += 1
            self.void = True
            return Verdict.MISMATCH
        bk, ak = self._bid_keys, self._ask_keys
        if bk and ak and -bk[0] >= ak[0]:
            self.crossed = True
            self.crossed_count += 1
            self.void = True
            return Verdict.CROSSED
        self.crossed = False
        self.verified_frames += 1
        return Verdict.VERIFIED

    def _compute_checksum(self) -> int:
        at = self._ask_tok
        if at is None:
            asks = self._asks
            at = self._ask_tok = "".join(
                [f"{k}{asks[k]}" for k in self._ask_keys[:10]]
            ).encode()
        bt = self._bid_tok
        if bt is None:
            bids = self._bids
            bt = self._bid_tok = "".join(
                [f"{-k}{bids[k]}" for k in self._bid_keys[:10]]
            ).encode()
        return zlib.crc32(bt, zlib.crc32(at))

    def invalidate(self) -> None:
        """Void the book (a resync is under way): nothing is published until a snapshot."""
        self.void = True

    # -- reading -------------------------------------------------------------------------

    @property
    def valid(self) -> bool:
        """Verified by the last frame's checksum and not crossed: safe to publish."""
        return not self.void

    def bids(self, n: int | None = None) -> list[Level]:
        """Best-first bids as (scaled price, scaled qty)."""
        keys = self._bid_keys if n is None else self._bid_keys[:n]
        d = self._bids
        return [(-k, d[k]) for k in keys]

    def asks(self, n: int | None = None) -> list[Level]:
        keys = self._ask_keys if n is None else self._ask_keys[:n]
        d = self._asks
        return [(k, d[k]) for k in keys]

    @property
    def best_bid(self) -> Level | None:
        if not self._bid_keys:
            return None
        k = self._bid_keys[0]
        return (-k, self._bids[k])

    @property
    def best_ask(self) -> Level | None:
        if not self._ask_keys:
            return None
        k = self._ask_keys[0]
        return (k, self._asks[k])

    @property
    def bid_levels(self) -> int:
        return len(self._bid_keys)

    @property
    def ask_levels(self) -> int:
        return len(self._ask_keys)

    def price_text(self, n: int | None) -> str | None:
        return None if n is None else format_scaled(n, self.precision.price)

    def qty_text(self, n: int) -> str:
        return format_scaled(n, self.precision.qty)

    def price_decimal(self, n: int) -> Decimal:
        return to_decimal(n, self.precision.price)


def _apply_side(
    book: dict[int, int], keys: list[int], levels: list[Level], sign: int, depth: int
) -> bool:
    """Apply levels in order, cut to depth; True if the top 10 may have changed."""
    tenth = keys[9] if len(keys) >= 10 else _INF
    top_changed = False
    for price, qty in levels:
        k = price if sign > 0 else -price
        if k <= tenth:
            top_changed = True
        if qty:
            if k not in book:
                insort(keys, k)
            book[k] = qty
        elif k in book:
            del book[k]
            del keys[bisect_left(keys, k)]
    if len(keys) > depth:
        for k in keys[depth:]:
            del book[k]
        del keys[depth:]
    return top_changed
