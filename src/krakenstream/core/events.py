"""Typed events decoded from Kraken WebSocket v2 frames.

One word is never used here: Kraken calls a frame that carries a whole book a ``snapshot``
(``"type": "snapshot"`` on the wire, kept as it is), and krakenstream calls its one-second
record of a book a :class:`~krakenstream.core.snapshot.Snapshot`. In the code Kraken's frame
is a *full book* (:attr:`BookMessage.is_full_book`), so the two never share a name.

Book levels are exact scaled integers ``(price * 10**pp, qty * 10**qp)`` when the pair's
precisions are known; the decoder learns them from ``instrument`` frames. Other channels
(trade, ticker) carry :class:`~decimal.Decimal` values.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, NamedTuple

#: (scaled price, scaled qty)
Level = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Precision:
    """A pair's price and quantity decimals, as given by the instrument channel."""

    price: int
    qty: int


class BookData(NamedTuple):
    """One pair's part of a ``book`` frame.

    ``bids``/``asks`` are in the order sent. When the pair's precision was unknown at decode
    time, ``precision`` is None and the levels are in ``raw_bids``/``raw_asks`` as exact
    Decimals instead (the book infers the precision from the full book's checksum).
    A NamedTuple, not a frozen dataclass: it is built once per frame on the hot path, and a
    tuple is several times cheaper to construct.
    """

    symbol: str
    bids: list[Level]
    asks: list[Level]
    checksum: int
    timestamp: str | None
    precision: Precision | None
    raw_bids: list[tuple[Decimal, Decimal]] | None = None
    raw_asks: list[tuple[Decimal, Decimal]] | None = None


class BookMessage(NamedTuple):
    """A ``book`` frame: a full book (Kraken's ``"type": "snapshot"``) or an update (changed
    levels only)."""

    type: Literal["snapshot", "update"]
    data: list[BookData]

    @property
    def is_full_book(self) -> bool:
        return self.type == "snapshot"


@dataclass(frozen=True, slots=True)
class InstrumentPair:
    symbol: str
    price_precision: int
    qty_precision: int
    price_increment: Decimal | None
    qty_increment: Decimal | None
    status: str


@dataclass(frozen=True, slots=True)
class Instrument:
    type: Literal["snapshot", "update"]
    pairs: list[InstrumentPair]


@dataclass(frozen=True, slots=True)
class Status:
    system: str
    api_version: str | None
    connection_id: int | None
    version: str | None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


@dataclass(frozen=True, slots=True)
class SubscriptionAck:
    """A subscribe/unsubscribe answer. Kraken sends one per symbol.

    On failure ``error`` holds Kraken's message and ``symbol`` the symbol it names, if any.
    Match on ``req_id``/``symbol``: an unsubscribe error may say ``method: subscribe``.
    """

    method: str
    req_id: int | None
    success: bool
    channel: str | None
    symbol: str | None
    depth: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Pong:
    req_id: int | None


@dataclass(frozen=True, slots=True)
class TradeData:
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    ord_type: str | None
    trade_id: int | None
    timestamp: str | None


@dataclass(frozen=True, slots=True)
class Trade:
    type: str
    data: list[TradeData]


@dataclass(frozen=True, slots=True)
class TickerData:
    symbol: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    last: Decimal
    volume: Decimal
    vwap: Decimal
    low: Decimal
    high: Decimal
    change: Decimal
    change_pct: Decimal


@dataclass(frozen=True, slots=True)
class Ticker:
    type: str
    data: list[TickerData]


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame that could not be decoded: counted and logged, never raised."""

    reason: str
    text: str

    @staticmethod
    def of(reason: str, text: str | bytes) -> BadFrame:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return BadFrame(reason=reason, text=text[:200])


Event = (
    BookMessage
    | Instrument
    | Status
    | Heartbeat
    | SubscriptionAck
    | Pong
    | Trade
    | Ticker
    | BadFrame
)
