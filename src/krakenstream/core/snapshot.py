"""A snapshot: one verified book at one instant, with its metrics; exact JSON round trip.

Values are kept as scaled integers plus the pair's precisions, and written as fixed-point
decimal strings, so ``Snapshot.from_dict(s.to_dict()) == s`` exactly. Derived metrics (spread,
mid, microprice, imbalance) are computed from the levels, never stored apart from them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, final

import orjson

from .book import OrderBook
from .events import Level
from .numbers import format_scaled, parse_scaled, to_decimal
from .times import iso_ms

SCHEMA_VERSION = 1
#: what makes a CSV field need quoting (besides a comma, found by counting them)
_NEEDS_QUOTING = re.compile(r'["\r\n]')
#: levels per side counted by the top-N imbalance
IMBALANCE_LEVELS = 10
_BPS = Decimal(10_000)


@final  # from_book builds its instances without __init__ (see _Unfrozen)
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
        """The book now, as a snapshot stamped ``ts``: the orderbook role's every tick, once
        per pair (3,000 a second on a busy daemon), so built without ``__init__`` (see
        :class:`_Unfrozen`); the very values ``Snapshot(...)`` with the same fields holds."""
        checksum = book.checksum
        if book.void or checksum is None:
            raise ValueError(f"{book.symbol}: a void or crossed book cannot be snapshotted")
        s = _Unfrozen()
        s.pair = book.symbol
        s.ts = ts
        s.exchange_ts = book.timestamp
        s.seq = seq
        precision = book.precision
        s.price_precision = precision.price
        s.qty_precision = precision.qty
        s.bids, s.asks = book.sides()
        s.checksum = checksum
        s.gap_before = gap_before
        s.origin = origin
        s.__class__ = Snapshot  # type: ignore[assignment]
        return s  # type: ignore[return-value]

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
        return mid_scaled(self.bids, self.asks)

    @property
    def mid(self) -> Decimal | None:
        m = self._mid_scaled()
        return None if m is None else to_decimal(m, self.price_precision + 1)

    def _spread_bps_scaled(self) -> int | None:
        return spread_bps_scaled(self.bids, self.asks)

    @property
    def spread_bps(self) -> Decimal | None:
        v = self._spread_bps_scaled()
        return None if v is None else to_decimal(v, 4)

    def _microprice_scaled(self) -> int | None:
        return microprice_scaled(self.bids, self.asks)

    @property
    def microprice(self) -> Decimal | None:
        """Size-weighted mid: leans toward the side with less size at the touch."""
        v = self._microprice_scaled()
        return None if v is None else to_decimal(v, self.price_precision + 4)

    def _imbalance_scaled(self, levels: int = IMBALANCE_LEVELS) -> int | None:
        return imbalance_scaled(self.bids, self.asks, levels)

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
        return metrics_text(self.bids, self.asks, self.price_precision)

    @property
    def time(self) -> str:
        return iso_ms(self.ts)

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return snapshot_dict(
            self.pair, self.ts, self.exchange_ts, self.seq, self.gap_before, self.checksum,
            self.price_precision, self.qty_precision, self.bids, self.asks, self.origin)

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
        return csv_fields(
            self.pair, self.ts, self.exchange_ts, self.seq, self.gap_before, self.checksum,
            self.price_precision, self.qty_precision, self.bids, self.asks)


class _Unfrozen:
    """A :class:`Snapshot`'s very slots, without the freeze: :meth:`Snapshot.from_book` fills
    one with plain attribute stores and then makes it a ``Snapshot`` (Python lets an object
    change ``__class__`` between two classes of the same ``__slots__``; from then on it is
    frozen like any other). A frozen dataclass's ``__init__`` goes through
    ``object.__setattr__`` by name for each of the eleven fields: 2-3 µs a snapshot measured
    alone, more than all the rest ``from_book`` does (``bench/tick.py`` has the whole).
    ``tests/test_core_snapshot.py`` holds the two ways to the same snapshot, field by field."""

    __slots__ = Snapshot.__slots__
    pair: str
    ts: int
    exchange_ts: str | None
    seq: int
    price_precision: int
    qty_precision: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    checksum: int
    gap_before: bool
    origin: str


# -- the renderings, as functions of the stored fields --------------------------------------
# A snapshot read back from its compact stored form (core/codec.py) is rendered by these
# very functions without being built as a Snapshot first: one code path, so a stored row's
# answer is byte for byte what the snapshot itself would give.

Levels = Sequence[Level]


def snapshot_dict(
    pair: str, ts: int, exchange_ts: str | None, seq: int, gap_before: bool, checksum: int,
    pp: int, qp: int, bids: Levels, asks: Levels, origin: str,
) -> dict[str, Any]:
    """:meth:`Snapshot.to_dict` of a snapshot with these fields."""
    bb, ba, spread, bps, mid, micro, imb = metrics_text(bids, asks, pp)
    return {
        "schema": SCHEMA_VERSION,
        "pair": pair,
        "ts": ts,
        "time": iso_ms(ts),
        "exchange_ts": exchange_ts,
        "seq": seq,
        "gap_before": gap_before,
        "checksum": checksum,
        "price_precision": pp,
        "qty_precision": qp,
        "best_bid": bb,
        "best_ask": ba,
        "spread": spread,
        "spread_bps": bps,
        "mid": mid,
        "microprice": micro,
        "imbalance": imb,
        "bids": levels_text(bids, pp, qp),
        "asks": levels_text(asks, pp, qp),
        **({"origin": origin} if origin else {}),
    }


def csv_fields(
    pair: str, ts: int, exchange_ts: str | None, seq: int, gap_before: bool, checksum: int,
    pp: int, qp: int, bids: Levels, asks: Levels,
) -> list[str]:
    """:meth:`Snapshot.csv_row` of a snapshot with these fields."""
    return [
        iso_ms(ts),
        pair,
        str(seq),
        *(v or "" for v in metrics_text(bids, asks, pp)),
        str(checksum),
        "1" if gap_before else "0",
        exchange_ts or "",
        " ".join(f"{p}@{q}" for p, q in levels_text(bids, pp, qp)),
        " ".join(f"{p}@{q}" for p, q in levels_text(asks, pp, qp)),
    ]


#: precision -> scaled int -> its text: a book's prices and sizes repeat from one second to
#: the next, so rendering a history mostly looks them up (a dict each, renewed when full)
_TEXTS: dict[int, dict[int, str]] = {}
_TEXTS_MAX = 1 << 16


def levels_text(levels: Levels, pp: int, qp: int) -> list[list[str]]:
    """``[[price, qty], ...]`` as fixed-point text (:func:`format_scaled`): the hot part of
    rendering history (40 numbers a depth-10 snapshot), memoised per precision."""
    pt, qt = _TEXTS.get(pp), _TEXTS.get(qp)
    if pt is None or len(pt) > _TEXTS_MAX:
        pt = _TEXTS[pp] = {}
    if qt is None or len(qt) > _TEXTS_MAX:
        qt = _TEXTS[qp] = {}
    out: list[list[str]] = []
    for p, q in levels:
        a = pt.get(p)
        if a is None:
            a = pt[p] = format_scaled(p, pp)
        b = qt.get(q)
        if b is None:
            b = qt[q] = format_scaled(q, qp)
        out.append([a, b])
    return out


def metrics_text(bids: Levels, asks: Levels, pp: int) -> tuple[str | None, ...]:
    """best bid, best ask, spread, spread bps, mid, microprice, imbalance as text."""
    has = bool(bids and asks)
    return (
        format_scaled(bids[0][0], pp) if bids else None,
        format_scaled(asks[0][0], pp) if asks else None,
        format_scaled(asks[0][0] - bids[0][0], pp) if has else None,
        _fmt(spread_bps_scaled(bids, asks), 4),
        _fmt(mid_scaled(bids, asks), pp + 1),
        _fmt(microprice_scaled(bids, asks), pp + 4),
        _fmt(imbalance_scaled(bids, asks), 6),
    )


# Each metric is computed exactly in integers at a fixed scale and shown as a Decimal or as
# fixed-point text; no float ever touches a price.


def mid_scaled(bids: Levels, asks: Levels) -> int | None:
    """Mid at ``price_precision + 1`` decimals: exact, since (a + b) / 2 needs one more."""
    if not bids or not asks:
        return None
    return (asks[0][0] + bids[0][0]) * 5


def spread_bps_scaled(bids: Levels, asks: Levels) -> int | None:
    """Spread over mid in basis points, at 4 decimals (half-even)."""
    if not bids or not asks:
        return None
    a, b = asks[0][0], bids[0][0]
    # (a - b) / ((a + b) / 2) * 10_000, scaled by 10**4
    return _div_half_even(2 * 10**8 * (a - b), a + b)


def microprice_scaled(bids: Levels, asks: Levels) -> int | None:
    """Size-weighted mid at ``price_precision + 4`` decimals (half-even)."""
    if not bids or not asks:
        return None
    (bp, bq), (ap, aq) = bids[0], asks[0]
    if bq + aq == 0:
        return None
    return _div_half_even((bp * aq + ap * bq) * 10**4, bq + aq)


def imbalance_scaled(bids: Levels, asks: Levels, levels: int = IMBALANCE_LEVELS) -> int | None:
    """(bid size - ask size) / (bid size + ask size) over the top ``levels``, 6 decimals."""
    b = sum([q for _, q in bids[:levels]])
    a = sum([q for _, q in asks[:levels]])
    if a + b == 0:
        return None
    return _div_half_even((b - a) * 10**6, a + b)


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


def csv_line(fields: list[str]) -> str:
    """One CSV line. Our fields never hold a comma, a quote or a line break, so a plain join
    (five times faster than the csv module) is the common case; a field that would need
    quoting is quoted as the csv module would (RFC 4180), so the output is always valid."""
    line = ",".join(fields)
    if line.count(",") == len(fields) - 1 and not _NEEDS_QUOTING.search(line):
        return line + "\n"
    quoted = [
        '"' + f.replace('"', '""') + '"' if ("," in f or _NEEDS_QUOTING.search(f)) else f
        for f in fields
    ]
    return ",".join(quoted) + "\n"
