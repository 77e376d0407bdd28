"""The book's rules one by one: order of application, deletes, truncation, crossed books,
void until the next full book, precision changes."""

from __future__ import annotations

import orjson
import pytest

from krakenstream.core.book import OrderBook, Verdict
from krakenstream.core.checksum import checksum
from krakenstream.core.events import Level, Precision
from krakenstream.core.session import BookSession


def make(depth: int = 10) -> OrderBook:
    return OrderBook("T/U", depth, Precision(1, 2))


def crc(book: OrderBook) -> int:
    return checksum(book.asks(10), book.bids(10))


def expected(asks: list[Level], bids: list[Level]) -> int:
    return checksum(sorted(asks)[:10], sorted(bids, reverse=True)[:10])


def test_depth_below_ten_is_refused() -> None:
    with pytest.raises(ValueError):
        OrderBook("T/U", 5, Precision(1, 2))


def test_update_applies_in_order_and_deletes() -> None:
    book = make()
    bids, asks = [(100, 1), (99, 2)], [(101, 3), (102, 4)]
    assert book.apply_full_book(bids, asks, expected(asks, bids)) is Verdict.VERIFIED
    # same price twice: the later value stands; a delete of an absent price is a no-op
    upd = [(98, 5), (98, 6), (97, 0)]
    assert book.apply_update(upd, [(101, 0)], expected([(102, 4)], [*bids, (98, 6)])) \
        is Verdict.VERIFIED
    assert book.bids() == [(100, 1), (99, 2), (98, 6)]
    assert book.asks() == [(102, 4)]
    assert book.sides() == (((100, 1), (99, 2), (98, 6)), ((102, 4),))
    assert book.best_bid == (100, 1) and book.best_ask == (102, 4)
    assert book.bids(2) == [(100, 1), (99, 2)] and book.asks(0) == []
    book.bids().clear()  # a copy: the book is untouched
    book.asks().append((1, 1))
    assert book.bid_levels == 3 and book.asks() == [(102, 4)]


def test_truncates_to_depth_after_each_frame() -> None:
    book = make(10)
    bids = [(100 - i, 1) for i in range(12)]  # two beyond the depth
    asks = [(200 + i, 1) for i in range(10)]
    kept = bids[:10]
    assert book.apply_full_book(bids, asks, expected(asks, kept)) is Verdict.VERIFIED
    assert book.bid_levels == 10 and book.bids()[-1] == (91, 1)
    # an insert at the top pushes the 10th out, with no delete sent
    new = [(101, 1), *kept][:10]
    assert book.apply_update([(101, 1)], [], expected(asks, new)) is Verdict.VERIFIED
    assert book.bids()[-1] == (92, 1)
    # deleting a level inside exposes nothing: the book is short until Kraken republishes
    assert book.apply_update([(100, 0)], [], expected(asks, [b for b in new if b[0] != 100])) \
        is Verdict.VERIFIED
    assert book.bid_levels == 9


def test_changes_below_the_top_ten_keep_the_checksum_right() -> None:
    book = OrderBook("T/U", 25, Precision(1, 2))
    bids = [(1000 - i, i + 1) for i in range(25)]
    asks = [(2000 + i, i + 1) for i in range(25)]
    book.apply_full_book(bids, asks, expected(asks, bids))
    before = book.checksum
    assert book.apply_update([(980, 77)], [(2020, 0)], before) is Verdict.VERIFIED
    assert (980, 77) in book.bids() and book.ask_levels == 24


def test_crossed_book_is_flagged_and_void() -> None:
    book = make()
    bids, asks = [(105, 1)], [(101, 1)]
    assert book.apply_full_book(bids, asks, expected(asks, bids)) is Verdict.CROSSED
    assert book.crossed and not book.valid and book.crossed_count == 1
    assert book.apply_update([], [(110, 1)], 0) is Verdict.IGNORED


def test_mismatch_voids_until_snapshot() -> None:
    book = make()
    bids, asks = [(100, 1)], [(101, 1)]
    book.apply_full_book(bids, asks, expected(asks, bids))
    assert book.apply_update([(99, 1)], [], 12345) is Verdict.MISMATCH
    assert not book.valid and book.mismatches == 1
    assert book.apply_update([(98, 1)], [], 0) is Verdict.IGNORED
    assert book.apply_full_book(bids, asks, expected(asks, bids)) is Verdict.VERIFIED
    assert book.valid and book.bids() == [(100, 1)]


def test_snapshot_checksum_is_checked() -> None:
    book = make()
    assert book.apply_full_book([(100, 1)], [(101, 1)], 1) is Verdict.MISMATCH


def test_precision_change_rebuilds_the_book() -> None:
    session = BookSession()

    def instrument(pp: int) -> bytes:
        return orjson.dumps({"channel": "instrument", "type": "update", "data": {"pairs": [
            {"symbol": "T/U", "price_precision": pp, "qty_precision": 2}]}})

    session.receive(instrument(1))
    bids, asks = [(1000, 100)], [(1001, 100)]
    snap = {"channel": "book", "type": "snapshot", "data": [{
        "symbol": "T/U", "bids": [{"price": 100.0, "qty": 1.0}],
        "asks": [{"price": 100.1, "qty": 1.0}], "checksum": expected(asks, bids)}]}
    _, res = session.receive(orjson.dumps(snap))
    assert res[0].verdict is Verdict.VERIFIED
    session.receive(instrument(2))
    book = session.books["T/U"]
    assert book.precision == Precision(2, 2) and not book.valid and book.frames == 1


def _instrument(pp: int) -> bytes:
    return orjson.dumps({"channel": "instrument", "type": "update", "data": {"pairs": [
        {"symbol": "T/U", "price_precision": pp, "qty_precision": 2}]}})


@pytest.mark.parametrize("depth", [5, 0, -3])
def test_an_ack_with_a_depth_below_ten_never_raises(depth: int) -> None:
    # the ack is input: a depth no book can have must not make the next frame raise
    session = BookSession()
    session.receive(orjson.dumps({
        "method": "subscribe", "req_id": 1, "success": True,
        "result": {"channel": "book", "depth": depth, "snapshot": True, "symbol": "T/U"}}))
    session.receive(_instrument(1))
    bids, asks = [(1000, 100)], [(1001, 100)]
    snap = {"channel": "book", "type": "snapshot", "data": [{
        "symbol": "T/U", "bids": [{"price": 100.0, "qty": 1.0}],
        "asks": [{"price": 100.1, "qty": 1.0}], "checksum": expected(asks, bids)}]}
    _, res = session.receive(orjson.dumps(snap))
    assert res[0].verdict is Verdict.VERIFIED and res[0].book.depth == 10


@pytest.mark.parametrize("repeat", [1, 2])
def test_the_book_shares_the_sessions_precision_after_instrument_frames(repeat: int) -> None:
    # the hot path takes a frame only while the book's Precision IS the session's (an
    # identity check): an instrument frame, resent unchanged or changing the precision, must
    # leave them the same object, or every later frame of that pair takes the slow path
    session = BookSession()
    session.receive(_instrument(1))
    bids, asks = [(1000, 100)], [(1001, 100)]
    snap = {"channel": "book", "type": "snapshot", "data": [{
        "symbol": "T/U", "bids": [{"price": 100.0, "qty": 1.0}],
        "asks": [{"price": 100.1, "qty": 1.0}], "checksum": expected(asks, bids)}]}
    session.receive(orjson.dumps(snap))
    session.receive(_instrument(repeat))
    assert session.books["T/U"].precision is session.precisions["T/U"]
