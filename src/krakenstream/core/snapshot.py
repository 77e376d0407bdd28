"""A snapshot: one verified book at one instant, with its metrics; exact JSON round trip.

Values are kept as scaled integers plus the pair's precisions, and written as fixed-point
decimal strings, so ``Snapshot.from_dict(s.to_dict()) == s`` exactly. Derived metrics (spread,
mid, microprice, imbalance) are computed from the levels, never stored apart from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import orjson

from .book import OrderBook
from .events import Level
from .numbers import format_scaled, parse_scaled, to_decimal

SCHEMA_VERSION = 1
#: levels per side counted by the top-N imbalance
IMBALANCE_LEVELS = 10
_BPS = Decimal(10_000)


def iso_ms(ts_ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds and a Z."""
    dt = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


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

    @classmethod
    def from_book(
        cls, book: OrderBook, *, ts: int, seq: int, gap_before: bool = False
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
        )

    # -- metrics -------------------------------------------------------------------------

    def _p(self, n: int) -> Decimal:
        return to_decimal(n, self.price_precision)

    def _q(self, n: int) -> Decimal:
        return to_decimal(n, self.qty_precision)

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

    @property
    def mid(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        total = self.asks[0][0] + self.bids[0][0]
        # exact: one more decimal than the price precision
        return (Decimal(total) / 2).scaleb(-self.price_precision)

    @property
    def spread_bps(self) -> Decimal | None:
        spread, mid = self.spread, self.mid
        if spread is None or mid is None or not mid:
            return None
        return (spread / mid * _BPS).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)

    @property
    def microprice(self) -> Decimal | None:
        """Size-weighted mid: leans toward the side with less size at the touch."""
        if not self.bids or not self.asks:
            return None
        (bp, bq), (ap, aq) = self.bids[0], self.asks[0]
        if bq + aq == 0:
            return self.mid
        value = (Decimal(bp) * aq + Decimal(ap) * bq) / (bq + aq)
        q = Decimal(1).scaleb(-4)
        return value.scaleb(-self.price_precision).quantize(
            q.scaleb(-self.price_precision), ROUND_HALF_EVEN
        )

    def imbalance(self, levels: int = IMBALANCE_LEVELS) -> Decimal | None:
        """(bid size - ask size) / (bid size + ask size) over the top ``levels`` per side."""
        b = sum(q for _, q in self.bids[:levels])
        a = sum(q for _, q in self.asks[:levels])
        if a + b == 0:
            return None
        return (Decimal(b - a) / Decimal(a + b)).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)

    @property
    def time(self) -> str:
        return iso_ms(self.ts)

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        pp, qp = self.price_precision, self.qty_precision

        def fmt(levels: tuple[Level, ...]) -> list[list[str]]:
            return [[format_scaled(p, pp), format_scaled(q, qp)] for p, q in levels]

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
            "best_bid": _s(self.best_bid),
            "best_ask": _s(self.best_ask),
            "spread": _s(self.spread),
            "spread_bps": _s(self.spread_bps),
            "mid": _s(self.mid),
            "microprice": _s(self.microprice),
            "imbalance": _s(self.imbalance()),
            "bids": fmt(self.bids),
            "asks": fmt(self.asks),
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
                return tuple((parse_scaled(p, pp), parse_scaled(q, qp)) for p, q in levels)

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
            _s(self.best_bid) or "",
            _s(self.best_ask) or "",
            _s(self.spread) or "",
            _s(self.spread_bps) or "",
            _s(self.mid) or "",
            _s(self.microprice) or "",
            _s(self.imbalance()) or "",
            str(self.checksum),
            "1" if self.gap_before else "0",
            self.exchange_ts or "",
            side(self.bids),
            side(self.asks),
        ]


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


def _s(v: Decimal | None) -> str | None:
    return None if v is None else format(v, "f")
