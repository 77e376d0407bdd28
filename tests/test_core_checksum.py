"""Kraken's published checksum vectors, through the checksum function, the book and the
decoder (which must keep every digit of the bare JSON numbers)."""

from __future__ import annotations

import orjson

from krakenstream.core.book import OrderBook, Verdict
from krakenstream.core.checksum import checksum_decimal
from krakenstream.core.events import Precision
from krakenstream.core.session import BookSession

# Kraken's book checksum guide, BTC/USD, precision 1 / 8
GUIDE_ASKS = [
    ("45285.2", "0.00100000"), ("45286.4", "1.54571953"), ("45286.6", "1.54571109"),
    ("45289.6", "1.54560911"), ("45290.2", "0.15890660"), ("45291.8", "1.54553491"),
    ("45294.7", "0.04454749"), ("45296.1", "0.35380000"), ("45297.5", "0.09945542"),
    ("45299.5", "0.18772827"),
]
GUIDE_BIDS = [
    ("45283.5", "0.10000000"), ("45283.4", "1.54582015"), ("45282.1", "0.10000000"),
    ("45281.0", "0.10000000"), ("45280.3", "1.54592586"), ("45279.0", "0.07990000"),
    ("45277.6", "0.03310103"), ("45277.5", "0.30000000"), ("45277.3", "1.54602737"),
    ("45276.6", "0.15445238"),
]
GUIDE_CHECKSUM = 3310070434

# Kraken's book page, MATIC/USD, precision 4 / 8, as bare JSON numbers (trailing zeros gone)
MATIC_SNAPSHOT = {
    "channel": "book",
    "type": "snapshot",
    "data": [{
        "symbol": "MATIC/USD",
        "bids": [
            {"price": 0.5666, "qty": 4831.75496356}, {"price": 0.5665, "qty": 6658.22734739},
            {"price": 0.5664, "qty": 18724.91513344}, {"price": 0.5663, "qty": 11563.92544914},
            {"price": 0.5662, "qty": 14006.65365711}, {"price": 0.5661, "qty": 17454.85679807},
            {"price": 0.566, "qty": 18097.1547}, {"price": 0.5659, "qty": 33644.89175666},
            {"price": 0.5658, "qty": 148.3464}, {"price": 0.5657, "qty": 606.70854372},
        ],
        "asks": [
            {"price": 0.5668, "qty": 4410.79769741}, {"price": 0.5669, "qty": 4655.40412487},
            {"price": 0.567, "qty": 49844.89424998}, {"price": 0.5671, "qty": 24306.41678},
            {"price": 0.5672, "qty": 29783.25223475}, {"price": 0.5673, "qty": 57234.71239278},
            {"price": 0.5674, "qty": 45065.04744}, {"price": 0.5675, "qty": 5912.76380354},
            {"price": 0.5676, "qty": 42514.92434778}, {"price": 0.5677, "qty": 36304.0847022},
        ],
        "checksum": 2439117997,
    }],
}
MATIC_UPDATE = {
    "channel": "book",
    "type": "update",
    "data": [{
        "symbol": "MATIC/USD",
        "bids": [{"price": 0.5657, "qty": 1098.3947558}],
        "asks": [],
        "checksum": 2114181697,
        "timestamp": "2023-10-06T17:35:55.440295Z",
    }],
}


def instrument(symbol: str, pp: int, qp: int) -> bytes:
    return orjson.dumps({"channel": "instrument", "type": "snapshot", "data": {
        "assets": [], "pairs": [{"symbol": symbol, "price_precision": pp, "qty_precision": qp}]}})


def test_guide_vector_from_decimal_text() -> None:
    assert checksum_decimal(GUIDE_ASKS, GUIDE_BIDS, 1, 8) == GUIDE_CHECKSUM


def test_guide_vector_through_the_book() -> None:
    book = OrderBook("BTC/USD", 10, Precision(1, 8))
    scale = lambda levels: [(round(float(p) * 10), round(float(q) * 10**8)) for p, q in levels]  # noqa: E731
    verdict = book.apply_full_book(scale(GUIDE_BIDS), scale(GUIDE_ASKS), GUIDE_CHECKSUM)
    assert verdict is Verdict.VERIFIED
    assert book.valid


def test_guide_vector_through_the_decoder_with_bare_numbers() -> None:
    # bare JSON numbers lose trailing zeros ("0.10000000" arrives as 0.1)
    frame = {"channel": "book", "type": "snapshot", "data": [{
        "symbol": "BTC/USD",
        "bids": [{"price": float(p), "qty": float(q)} for p, q in GUIDE_BIDS],
        "asks": [{"price": float(p), "qty": float(q)} for p, q in GUIDE_ASKS],
        "checksum": GUIDE_CHECKSUM}]}
    session = BookSession()
    session.receive(instrument("BTC/USD", 1, 8))
    _, results = session.receive(orjson.dumps(frame))
    assert [r.verdict for r in results] == [Verdict.VERIFIED]


def test_matic_snapshot_then_update() -> None:
    session = BookSession()
    session.receive(instrument("MATIC/USD", 4, 8))
    _, snap = session.receive(orjson.dumps(MATIC_SNAPSHOT))
    assert [r.verdict for r in snap] == [Verdict.VERIFIED]
    assert snap[0].book.checksum == 2439117997
    _, upd = session.receive(orjson.dumps(MATIC_UPDATE))
    assert [r.verdict for r in upd] == [Verdict.VERIFIED]
    book = upd[0].book
    assert book.checksum == 2114181697
    assert book.bids()[-1] == (5657, 109839475580)
    assert book.qty_text(book.bids()[-1][1]) == "1098.39475580"


def test_matic_precision_inferred_without_instrument_frame() -> None:
    session = BookSession()
    _, snap = session.receive(orjson.dumps(MATIC_SNAPSHOT))
    assert [r.verdict for r in snap] == [Verdict.VERIFIED]
    assert session.precisions["MATIC/USD"] == Precision(4, 8)
    _, upd = session.receive(orjson.dumps(MATIC_UPDATE))
    assert [r.verdict for r in upd] == [Verdict.VERIFIED]


def test_wrong_checksum_voids_until_next_snapshot() -> None:
    session = BookSession()
    session.receive(instrument("MATIC/USD", 4, 8))
    session.receive(orjson.dumps(MATIC_SNAPSHOT))
    bad = orjson.loads(orjson.dumps(MATIC_UPDATE))
    bad["data"][0]["checksum"] = 1
    _, res = session.receive(orjson.dumps(bad))
    assert res[0].verdict is Verdict.MISMATCH
    assert not res[0].book.valid
    assert res[0].book.computed_checksum == 2114181697
    _, res = session.receive(orjson.dumps(MATIC_UPDATE))
    assert res[0].verdict is Verdict.IGNORED
    _, res = session.receive(orjson.dumps(MATIC_SNAPSHOT))
    assert res[0].verdict is Verdict.VERIFIED and res[0].book.valid
