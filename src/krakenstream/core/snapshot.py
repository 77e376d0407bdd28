"""A snapshot: one verified book at one instant, with its metrics; exact JSON round trip.

Values are kept as scaled integers plus the pair's precisions, and written as fixed-point
decimal strings, so ``Snapshot.from_dict(s.to_dict()) == s`` exactly. Derived metrics (spread,
mid, microprice, imbalance) are computed from the levels, never stored apart from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from .book import OrderBook
from .events import Level
from .numbers import format_scaled, parse_scaled, to_decimal
from .times import iso_ms

SCHEMA_VERSION = 1
#: levels per side counted by the top-N imbalance
IMBALANCE_LEVELS = 10
_BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class Snapshot:
    pair: str
    #: the snapshot's own time (the aligned publish tick), epoch milliseconds, local clock
    ts: int
    #: the exchange timestamp of the last update applied to the book, if Kraken sent one
    exchange_ts: str | None
    #: per-pair publish sequence number of the orderbook role
    seq: int
    price_precision: int
    qty_precision: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    #: the Kraken checksum the book was verified with
    checksum: int
    #: True when snapshots were missing just before this one (stale, resync, error, restart)
    gap_before: bool = False
    #: short id of the orderbook process that published it ("" when unknown); with ``seq``
    #: it proves continuity (see :mod:`krakenstream.core.gaps`)
    origin: str = ""

    @classmethod
    def from_book(
        cls, book: OrderBook, *, ts: int, seq: int, gap_before: bool = False, origin: str = ""
    ) -> Snapshot:
        if not book.valid or book.checksum is None:
            raise ValueError(f"{book.symbol}: a void or crossed book cannot be snapshotted")
        return cls(
            pair=book.symbol,
            ts=ts,
            exchange_ts=book.timestamp,
            seq=seq,
            price_precision=book.precision.price,
            qty_precision=book.precision.qty,
            bids=tuple(book.bids()),
            asks=tuple(book.asks()),
            checksum=book.checksum,
            gap_before=gap_before,
            origin=origin,
        )

    # -- metrics ---------------------------------------------------------------------------
    # Each metric is computed exactly in integers at a fixed scale (``*_scaled``) and shown
    # as a Decimal or as fixed-point text; no float ever touches a price.

    def _p(self, n: int) -> Decimal:
        return to_decimal(n, self.price_precision)

    @property
    def best_bid(self) -> Decimal | None:
        return self._p(self.bids[0][0]) if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self._p(self.asks[0][0]) if self.asks else None

    @property
    def spread(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return self._p(self.asks[0][0] - self.bids[0][0])

    def _mid_scaled(self) -> int | None:
        """Mid at ``price_precision + 1`` decimals: exact, since (a + b) / 2 needs one more."""
        if not self.bids or not self.asks:
            return None
        return (self.asks[0][0] + self.bids[0][0]) * 5

    @property
    def mid(self) -> Decimal | None:
        m = self._mid_scaled()
        return None if m is None else to_decimal(m, self.price_precision + 1)

    def _spread_bps_scaled(self) -> int | None:
        """Spread over mid in basis points, at 4 decimals (half-even)."""
        if not self.bids or not self.asks:
            return None
        a, b = self.asks[0][0], self.bids[0][0]
        # (a - b) / ((a + b) / 2) * 10_000, scaled by 10**4
        return _div_half_even(2 * 10**8 * (a - b), a + b)

    @property
    def spread_bps(self) -> Decimal | None:
        v = self._spread_bps_scaled()
        return None if v is None else to_decimal(v, 4)

    def _microprice_scaled(self) -> int | None:
        """Size-weighted mid at ``price_precision + 4`` decimals (half-even)."""
        if not self.bids or not self.asks:
            return None
        (bp, bq), (ap, aq) = self.bids[0], self.asks[0]
        if bq + aq == 0:
            return None
        return _div_half_even((bp * aq + ap * bq) * 10**4, bq + aq)

    @property
    def microprice(self) -> Decimal | None:
        """Size-weighted mid: leans toward the side with less size at the touch."""
        v = self._microprice_scaled()
        return None if v is None else to_decimal(v, self.price_precision + 4)

    def _imbalance_scaled(self, levels: int = IMBALANCE_LEVELS) -> int | None:
        b = sum(q for _, q in self.bids[:levels])
        a = sum(q for _, q in self.asks[:levels])
        if a + b == 0:
            return None
        return _div_half_even((b - a) * 10**6, a + b)

    def imbalance(self, levels: int = IMBALANCE_LEVELS) -> Decimal | None:
        """(bid size - ask size) / (bid size + ask size) over the top ``levels`` per side,
        at 6 decimals."""
        v = self._imbalance_scaled(levels)
        return None if v is None else to_decimal(v, 6)

    def metrics_scaled(self) -> tuple[int | None, ...]:
        """best bid, best ask, spread, spread bps, mid, microprice, imbalance as scaled ints,
        at the scales :func:`metric_scales` gives for this snapshot's price precision."""
        has = bool(self.bids and self.asks)
        return (
            self.bids[0][0] if self.bids else None,
            self.asks[0][0] if self.asks else None,
            self.asks[0][0] - self.bids[0][0] if has else None,
            self._spread_bps_scaled(),
            self._mid_scaled(),
            self._microprice_scaled(),
            self._imbalance_scaled(),
        )

    def metrics_text(self) -> tuple[str | None, ...]:
        """best bid, best ask, spread, spread bps, mid, microprice, imbalance as text."""
        pp = self.price_precision
        has = bool(self.bids and self.asks)
        return (
            format_scaled(self.bids[0][0], pp) if self.bids else None,
            format_scaled(self.asks[0][0], pp) if self.asks else None,
            format_scaled(self.asks[0][0] - self.bids[0][0], pp) if has else None,
            _fmt(self._spread_bps_scaled(), 4),
            _fmt(self._mid_scaled(), pp + 1),
            _fmt(self._microprice_scaled(), pp + 4),
            _fmt(self._imbalance_scaled(), 6),
        )

    @property
    def time(self) -> str:
        return iso_ms(self.ts)

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        pp, qp = self.price_precision, self.qty_precision

        def fmt(levels: tuple[Level, ...]) -> list[list[str]]:
            return [[format_scaled(p, pp), format_scaled(q, qp)] for p, q in levels]

        bb, ba, spread, bps, mid, micro, imb = self.metrics_text()
        return {
            "schema": SCHEMA_VERSION,
            "pair": self.pair,
            "ts": self.ts,
            "time": self.time,
            "exchange_ts": self.exchange_ts,
            "seq": self.seq,
            "gap_before": self.gap_before,
            "checksum": self.checksum,
            "price_precision": pp,
            "qty_precision": qp,
            "best_bid": bb,
            "best_ask": ba,
            "spread": spread,
            "spread_bps": bps,
            "mid": mid,
            "microprice": micro,
            "imbalance": imb,
            "bids": fmt(self.bids),
            "asks": fmt(self.asks),
            **({"origin": self.origin} if self.origin else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Snapshot:
        """Inverse of :meth:`to_dict`; raises ValueError on a malformed record."""
        try:
            schema = d.get("schema", SCHEMA_VERSION)
            if schema != SCHEMA_VERSION:
                raise ValueError(f"unsupported snapshot schema {schema!r}")
            pp, qp = int(d["price_precision"]), int(d["qty_precision"])

            def parse(levels: Any) -> tuple[Level, ...]:
                return tuple((parse_fixed(p, pp), parse_fixed(q, qp)) for p, q in levels)

            ts = d["ts"]
            if type(ts) is not int:
                raise ValueError("ts must be an integer (epoch ms)")
            return cls(
                pair=str(d["pair"]),
                ts=ts,
                exchange_ts=d.get("exchange_ts"),
                seq=int(d["seq"]),
                price_precision=pp,
                qty_precision=qp,
                bids=parse(d["bids"]),
                asks=parse(d["asks"]),
                checksum=int(d["checksum"]),
                gap_before=bool(d.get("gap_before", False)),
                origin=str(d.get("origin") or ""),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ValueError(f"malformed snapshot record: {exc}") from exc

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, data: str | bytes) -> Snapshot:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"snapshot is not JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise ValueError("snapshot is not a JSON object")
        return cls.from_dict(obj)

    # -- CSV -----------------------------------------------------------------------------

    def csv_row(self) -> list[str]:
        pp, qp = self.price_precision, self.qty_precision

        def side(levels: tuple[Level, ...]) -> str:
            return " ".join(f"{format_scaled(p, pp)}@{format_scaled(q, qp)}" for p, q in levels)

        return [
            self.time,
            self.pair,
            str(self.seq),
            *(v or "" for v in self.metrics_text()),
            str(self.checksum),
            "1" if self.gap_before else "0",
            self.exchange_ts or "",
            side(self.bids),
            side(self.asks),
        ]


#: the metrics, in the order of :meth:`Snapshot.metrics_scaled` and of every layout
METRIC_COLUMNS = (
    "best_bid", "best_ask", "spread", "spread_bps", "mid", "microprice", "imbalance",
)


def metric_scales(price_precision: int) -> tuple[int, ...]:
    """The decimals of each metric (as :data:`METRIC_COLUMNS`) for a price precision."""
    pp = price_precision
    return (pp, pp, pp, 4, pp + 1, pp + 4, 6)


#: CSV columns, in order (documented in the README)
CSV_COLUMNS = [
    "time",
    "pair",
    "seq",
    "best_bid",
    "best_ask",
    "spread",
    "spread_bps",
    "mid",
    "microprice",
    "imbalance",
    "checksum",
    "gap_before",
    "exchange_ts",
    "bids",
    "asks",
]


def csv_row_from_dict(d: dict[str, Any]) -> list[str]:
    """The CSV row of a stored snapshot's JSON object (as :meth:`Snapshot.to_dict` wrote it),
    without rebuilding the snapshot: the stored text is already exact, so a 10,000-row export
    need not parse and re-format 400,000 numbers. Same output as :meth:`Snapshot.csv_row`."""

    def side(levels: list[list[str]]) -> str:
        return " ".join([f"{p}@{q}" for p, q in levels])

    def opt(key: str) -> str:
        v = d.get(key)
        return "" if v is None else str(v)

    return [
        d["time"], d["pair"], str(d["seq"]), opt("best_bid"), opt("best_ask"), opt("spread"),
        opt("spread_bps"), opt("mid"), opt("microprice"), opt("imbalance"), str(d["checksum"]),
        "1" if d.get("gap_before") else "0", opt("exchange_ts"), side(d["bids"]),
        side(d["asks"]),
    ]


def _fmt(v: int | None, precision: int) -> str | None:
    return None if v is None else format_scaled(v, precision)


def _div_half_even(num: int, den: int) -> int:
    """``num / den`` rounded half to even, exactly (``den > 0``)."""
    q, r = divmod(num, den)  # floor division: 0 <= r < den
    twice = 2 * r
    if twice > den or (twice == den and q % 2 == 1):
        q += 1
    return q


def parse_fixed(text: str, precision: int) -> int:
    """Fixed-point text with exactly ``precision`` decimals → scaled int, without Decimal.

    The common case (text written by :func:`format_scaled`) is a string splice; anything
    else (other digit counts, exponents) goes through the exact Decimal parser.
    """
    if type(text) is str:
        i = text.find(".")
        digits = text if i < 0 and precision == 0 else (
            text[:i] + text[i + 1:] if i >= 0 and len(text) - i - 1 == precision else ""
        )
        body = digits[1:] if digits[:1] == "-" else digits
        if body and body.isascii() and body.isdigit():
            return int(digits)
    return parse_scaled(text, precision)
