"""An exact, checksum-verified order book for one pair.

Levels are scaled integers keyed by exact price. Each side is three parallel lists kept sorted
by bisect: keys, levels and each level's checksum token; bids are keyed by the negated
price so both sides run best-first in ascending order. (Parallel lists beat a dict plus a
sorted key list here: the checksum needs the top 10 tokens in order, which is then one slice.)
A level is kept as the very ``(price, qty)`` tuple its frame brought (immutable): reading a
side, or a snapshot of it (3,000 a second on a busy daemon), copies one list of them instead
of building a tuple per level.

A frame is applied level by level in the order sent (so the same price twice: the later one
stands), ``qty == 0`` deletes (absent price: no-op), then each side is cut to the
subscribed depth, then the CRC32 is checked. A mismatch voids the book until the next full book;
a crossed book (best bid >= best ask) is flagged and also voids it: either way nothing may be
published from it.

The checksum text of each side's top 10 is cached: a frame that only touches levels below the
10th reuses it, which is most frames on a deep, busy book.
"""

from __future__ import annotations

import enum
import zlib
from bisect import bisect_left
from decimal import Decimal

from .events import Level, Precision
from .numbers import format_scaled, pow10, to_decimal


class Verdict(enum.Enum):
    """What one frame did to the book."""

    VERIFIED = "verified"  #: applied, checksum matches, not crossed
    MISMATCH = "mismatch"  #: applied, checksum differs: the book is now void
    CROSSED = "crossed"  #: applied, checksum matches, but best bid >= best ask: void
    IGNORED = "ignored"  #: an update while the book is void (waiting for a full book)


_INF = float("inf")
#: the checksum covers 10 levels per side, so no book can be cut shorter
MIN_DEPTH = 10


class OrderBook:
    """One pair's book at a subscribed depth and a fixed precision."""

    __slots__ = (
        "symbol",
        "depth",
        "precision",
        "pscale",
        "qscale",
        "_bid_keys",
        "_bid_lv",
        "_bid_tt",
        "_ask_keys",
        "_ask_lv",
        "_ask_tt",
        "_bid_tok",
        "_ask_crc",
        "_crc",
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
    )

    def __init__(self, symbol: str, depth: int, precision: Precision) -> None:
        if depth < MIN_DEPTH:
            raise ValueError("depth must be at least 10 (the checksum covers 10 levels)")
        self.symbol = symbol
        self.depth = depth
        self.precision = precision
        self.pscale = pow10(precision.price)
        self.qscale = pow10(precision.qty)
        self._bid_keys: list[int] = []  # -price ascending = best bid first
        self._bid_lv: list[Level] = []  # (price, qty), price not negated
        self._ask_keys: list[int] = []  # price ascending = best ask first
        self._ask_lv: list[Level] = []
        # each level's checksum token (price digits + qty digits), kept beside its qty so a
        # changed top 10 costs one join, not ten formats
        self._bid_tt: list[bytes] = []
        self._ask_tt: list[bytes] = []
        # the bids' top-10 checksum text, the CRC32 of the asks' top-10 text, and the whole
        # checksum: each recomputed only when its side's top 10 changed
        self._bid_tok = b""
        self._ask_crc = 0
        self._crc: int | None = 0
        #: the checksum the exchange sent with the last applied frame
        self.checksum: int | None = None
        #: the checksum this book computed for the last frame that did NOT match
        self.computed_checksum: int | None = None
        #: True until a full book, and after a mismatch or a crossed book
        self.void = True
        self.crossed = False
        self.timestamp: str | None = None
        self.frames = 0
        self.verified_frames = 0
        self.mismatches = 0
        self.crossed_count = 0
        self.ignored = 0

    # -- applying frames -----------------------------------------------------------------

    def apply_full_book(
        self, bids: list[Level], asks: list[Level], checksum: int, timestamp: str | None = None
    ) -> Verdict:
        for side in (self._bid_keys, self._bid_lv, self._bid_tt,
                     self._ask_keys, self._ask_lv, self._ask_tt):
            side.clear()
        self._bid_tok = b""
        self._ask_crc = 0
        self._crc = 0
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
        # the hot path: kept flat on purpose (attribute reads hoisted, no helper per side)
        self.frames += 1
        if timestamp is not None:
            self.timestamp = timestamp
        if asks:
            tt = self._ask_tt
            if _apply_asks(self._ask_keys, self._ask_lv, tt, asks, self.depth):
                self._ask_crc = zlib.crc32(b"".join(tt[:10]))
                self._crc = None
        if bids:
            tt = self._bid_tt
            if _apply_bids(self._bid_keys, self._bid_lv, tt, bids, self.depth):
                self._bid_tok = b"".join(tt[:10])
                self._crc = None
        computed = self._crc
        if computed is None:
            computed = self._crc = zlib.crc32(self._bid_tok, self._ask_crc)
        self.checksum = checksum
        if computed != checksum:
            self.computed_checksum = computed
            self.mismatches += 1
            self.void = True
            return _MISMATCH
        bk = self._bid_keys
        ak = self._ask_keys
        if bk and ak and -bk[0] >= ak[0]:
            self.crossed = True
            self.crossed_count += 1
            self.void = True
            return _CROSSED
        self.verified_frames += 1
        return _VERIFIED

    def invalidate(self) -> None:
        """Void the book (a resync is under way): nothing is published until a full book."""
        self.void = True

    # -- reading -------------------------------------------------------------------------

    @property
    def valid(self) -> bool:
        """Verified by the last frame's checksum and not crossed: safe to publish."""
        return not self.void

    def bids(self, n: int | None = None) -> list[Level]:
        """Best-first bids as (scaled price, scaled qty)."""
        return self._bid_lv[:n]

    def asks(self, n: int | None = None) -> list[Level]:
        """Best-first asks as (scaled price, scaled qty)."""
        return self._ask_lv[:n]

    def sides(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """Every bid and every ask, best first, as tuples (what a snapshot keeps)."""
        return tuple(self._bid_lv), tuple(self._ask_lv)

    @property
    def best_bid(self) -> Level | None:
        return self._bid_lv[0] if self._bid_lv else None

    @property
    def best_ask(self) -> Level | None:
        return self._ask_lv[0] if self._ask_lv else None

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


def _apply_asks(
    keys: list[int], lvs: list[Level], toks: list[bytes], levels: list[Level], depth: int
) -> bool:
    """Apply ask levels in order, cut to depth; True if the top 10 may have changed.

    ``keys`` ascending is best-first. A change can only alter the top 10 if its price is at or
    above the 10th price before the frame (or the side had fewer than 10 levels).
    """
    tenth = keys[9] if len(keys) >= 10 else _INF
    top_changed = False
    for lv in levels:
        price, qty = lv
        if price <= tenth:
            top_changed = True
        i = bisect_left(keys, price)
        if i < len(keys) and keys[i] == price:
            if qty:
                lvs[i] = lv
                toks[i] = b"%d%d" % lv
            else:
                del keys[i], lvs[i], toks[i]
        elif qty:
            keys.insert(i, price)
            lvs.insert(i, lv)
            toks.insert(i, b"%d%d" % lv)
    if len(keys) > depth:
        del keys[depth:], lvs[depth:], toks[depth:]
    return top_changed


def _apply_bids(
    keys: list[int], lvs: list[Level], toks: list[bytes], levels: list[Level], depth: int
) -> bool:
    """The bid twin of :func:`_apply_asks`: keys are negated prices, so ascending is best-first.

    Written out twice rather than parametrised by a sign: this is the innermost loop.
    """
    tenth = keys[9] if len(keys) >= 10 else _INF
    top_changed = False
    for lv in levels:
        price, qty = lv
        k = -price
        if k <= tenth:
            top_changed = True
        i = bisect_left(keys, k)
        if i < len(keys) and keys[i] == k:
            if qty:
                lvs[i] = lv
                toks[i] = b"%d%d" % lv
            else:
                del keys[i], lvs[i], toks[i]
        elif qty:
            keys.insert(i, k)
            lvs.insert(i, lv)
            toks.insert(i, b"%d%d" % lv)
    if len(keys) > depth:
        del keys[depth:], lvs[depth:], toks[depth:]
    return top_changed


_VERIFIED = Verdict.VERIFIED
_MISMATCH = Verdict.MISMATCH
_CROSSED = Verdict.CROSSED
