"""The simulator's pure market: frames rebuilt by the real core verify, at every depth."""

from __future__ import annotations

import random
import re
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krakenstream.core.book import Verdict
from krakenstream.core.session import BookSession
from krakenstream.sim.market import (
    DEFAULT_PAIRS,
    BookStream,
    Market,
    PairBook,
    guess_spec,
    synthetic_specs,
)

DEPTHS = (10, 25, 100, 500, 1000)
TS = "2026-01-02T03:04:05.123456Z"
# several precisions: 1/8, 9/2, 7/8, 5/8 (a BTC quote), and a synthetic 8/2
SYMBOLS = ("BTC/USD", "PEPE/USD", "DOGE/USD", "ETH/BTC", "SYN0008/USD")


def _market(seed: int = 11) -> Market:
    return Market([*DEFAULT_PAIRS, *synthetic_specs(10, seed)], seed=seed)


def _session(market: Market, symbol: str, depth: int) -> BookSession:
    session = BookSession(precisions={symbol: market.precision(symbol)})
    session.receive(orjson.dumps({
        "method": "subscribe", "req_id": 1, "success": True,
        "result": {"channel": "book", "depth": depth, "snapshot": True, "symbol": symbol},
    }))
    return session


def _feed(session: BookSession, frame: dict[str, Any]) -> Verdict:
    _, results = session.receive(orjson.dumps(frame))
    assert len(results) == 1
    return results[0].verdict


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_every_frame_verifies_at_every_depth_and_the_book_matches(symbol: str) -> None:
    market = _market()
    book = market.book(symbol)
    # all five depths watch the same pair at once, as five subscribers would
    streams = {
        d: BookStream(book, d, random.Random(d), extra_rate=0.2, duplicate_rate=0.2)
        for d in DEPTHS
    }
    sessions = {d: _session(market, symbol, d) for d in DEPTHS}
    for d in DEPTHS:
        assert _feed(sessions[d], streams[d].snapshot(TS)) is Verdict.VERIFIED
    updates = dict.fromkeys(DEPTHS, 0)
    for _ in range(400):
        step = market.step(symbol)
        for d in DEPTHS:
            frame = streams[d].update(step, TS)
            if frame is not None:
                updates[d] += 1
                assert _feed(sessions[d], frame) is Verdict.VERIFIED, (symbol, d)
    for d in DEPTHS:
        assert updates[d] > 300  # the touch moves on nearly every step
        bids, asks = book.top(d)
        ours = sessions[d].books[symbol]
        assert len(bids) == len(asks) == d
        assert (ours.bids(), ours.asks()) == (bids, asks)
        assert ours.verified_frames == updates[d] + 1


def _side_levels(frame: dict[str, Any], side: str) -> list[tuple[float, float]]:
    return [(lv["price"], lv["qty"]) for lv in frame["data"][0][side]]


def test_quirks_appear_levels_beyond_the_depth_and_a_price_twice() -> None:
    market = _market()
    book = market.book("ETH/USD")
    stream = BookStream(book, 10, random.Random(3), extra_rate=0.3, duplicate_rate=0.3)
    stream.snapshot(TS)
    beyond = twice = deep_zero = 0
    for _ in range(300):
        step = market.step("ETH/USD")
        frame = stream.update(step, TS)
        if frame is None:
            continue
        bids, asks = book.top(10)
        # beyond the view: worse than the 10th level (lower bids, higher asks)
        for side, sign, worst in (("bids", -1, bids[-1][0] / 100), ("asks", 1, asks[-1][0] / 100)):
            levels = _side_levels(frame, side)
            prices = [p for p, _ in levels]
            twice += len(prices) != len(set(prices))
            beyond += any(q > 0 and sign * (p - worst) > 0 for p, q in levels)
            deep_zero += any(q == 0 and sign * (p - worst) > 0 for p, q in levels)
    assert beyond > 10
    assert twice > 10
    assert deep_zero > 3


def _script(book: PairBook, depth: int) -> tuple[BookStream, BookSession, Market]:
    market = Market([book.spec])
    stream = BookStream(book, depth, random.Random(0), extra_rate=0.0, duplicate_rate=0.0)
    session = _session(market, book.symbol, depth)
    assert _feed(session, stream.snapshot(TS)) is Verdict.VERIFIED
    return stream, session, market


def test_a_delete_in_the_view_sends_zero_and_republishes_the_level_entering_at_the_edge() -> None:
    book = PairBook(guess_spec("BTC/USD"), random.Random(5))
    stream, session, _ = _script(book, 10)
    third = book.asks.price_at(2)
    eleventh = book.asks.price_at(10)
    frame = stream.update(book.apply(asks=[(third, 0)]), TS)
    assert frame is not None
    asks = frame["data"][0]["asks"]
    assert {"price": third / 10, "qty": 0.0} in asks
    assert {"price": eleventh / 10, "qty": book.asks.qty[eleventh] / 10**8} in asks
    assert frame["data"][0]["bids"] == []
    assert _feed(session, frame) is Verdict.VERIFIED


def test_an_insert_in_the_view_does_not_send_the_level_it_pushes_out() -> None:
    book = PairBook(guess_spec("BTC/USD"), random.Random(5))
    stream, session, _ = _script(book, 10)
    tenth = book.bids.price_at(9)
    first, second = book.bids.price_at(0), book.bids.price_at(1)
    assert first - second >= 2, "the scenario needs room between the two best bids"
    new = first - 1
    frame = stream.update(book.apply(bids=[(new, 12345)]), TS)
    assert frame is not None
    assert frame["data"][0]["bids"] == [{"price": new / 10, "qty": 12345 / 10**8}]
    assert all(lv["price"] != tenth / 10 for lv in frame["data"][0]["bids"])
    assert _feed(session, frame) is Verdict.VERIFIED
    assert session.books["BTC/USD"].bids()[-1][0] == book.bids.price_at(9)


def test_changes_beyond_the_view_send_nothing() -> None:
    book = PairBook(guess_spec("ETH/USD"), random.Random(9))
    stream, _, _ = _script(book, 25)
    deep = book.asks.price_at(200)
    assert stream.update(book.apply(asks=[(deep, 0)]), TS) is None


def test_the_same_seed_gives_the_same_frames() -> None:
    def frames(seed: int) -> list[bytes]:
        market = _market(seed)
        stream = BookStream(market.book("SOL/USD"), 100, random.Random(seed))
        out = [orjson.dumps(stream.snapshot(TS))]
        for _ in range(50):
            frame = stream.update(market.step("SOL/USD"), TS)
            if frame is not None:
                out.append(orjson.dumps(frame))
        return out

    assert frames(4) == frames(4)
    assert frames(4) != frames(5)


def test_numbers_are_bare_json_numbers_exact_at_the_pair_precision() -> None:
    market = _market()
    for symbol in SYMBOLS:
        prec = market.precision(symbol)
        text = orjson.dumps(BookStream(market.book(symbol), 1000, random.Random()).snapshot(TS))
        decoded = orjson.loads(text)["data"][0]
        for lv in decoded["bids"] + decoded["asks"]:
            for key, places in (("price", prec.price), ("qty", prec.qty)):
                value = Decimal(repr(lv[key]))
                assert value == value.quantize(Decimal(1).scaleb(-places)), (symbol, lv)
        # no string numbers, and no padded trailing zeros such as 0.10
        assert b'"price":"' not in text
        assert not re.search(rb'"(price|qty)":\d+\.\d*[1-9]0+[,}]', text)


def test_timestamps_are_passed_through() -> None:
    market = _market()
    stream = BookStream(market.book("ETH/USD"), 10, random.Random())
    assert stream.snapshot(TS)["data"][0]["timestamp"] == TS
    frame = None
    while frame is None:
        frame = stream.update(market.step("ETH/USD"), TS)
    assert frame["data"][0]["timestamp"] == TS


def test_instrument_data_describes_every_pair() -> None:
    market = _market()
    data = market.instrument_data()
    pairs = {p["symbol"]: p for p in data["pairs"]}
    assert set(pairs) == set(market.specs)
    pepe = pairs["PEPE/USD"]
    assert (pepe["price_precision"], pepe["qty_precision"]) == (9, 2)
    assert pepe["price_increment"] == 1e-09 and pepe["qty_increment"] == 0.01
    assert pairs["BTC/USD"]["price_increment"] == 0.1
    assert {"base", "quote", "status"} <= set(pepe)
    assert {"BTC", "USD", "PEPE"} <= {a["id"] for a in data["assets"]}


_OP = st.tuples(
    st.sampled_from(["bids", "asks"]),
    st.integers(min_value=0, max_value=40),  # around the depth-10 and depth-25 edges
    st.sampled_from(["delete", "change", "insert"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.lists(_OP, min_size=1, max_size=8), min_size=1, max_size=25),
       seed=st.integers(0, 1000))
@pytest.mark.slow
def test_any_edits_around_the_view_edges_verify(
    steps: list[list[tuple[str, int, str]]], seed: int
) -> None:
    """Hand-made edits (many in one frame, at and beyond the edges) keep every view exact."""
    book = PairBook(guess_spec("ETH/USD"), random.Random(seed))
    market = Market([book.spec])
    views = {d: BookStream(book, d, random.Random(seed + d)) for d in (10, 25)}
    sessions = {d: _session(market, "ETH/USD", d) for d in views}
    for d, view in views.items():
        assert _feed(sessions[d], view.snapshot(TS)) is Verdict.VERIFIED
    rng = random.Random(seed)
    for ops in steps:
        edits: dict[str, dict[int, int]] = {"bids": {}, "asks": {}}
        for side_name, idx, kind in ops:
            side = book.bids if side_name == "bids" else book.asks
            price = side.price_at(idx)
            if kind == "delete":
                edits[side_name][price] = 0
            elif kind == "change":
                edits[side_name][price] = rng.randint(1, 10**9)
            elif idx > 0 and abs(side.price_at(idx) - side.price_at(idx - 1)) > 1:
                # strictly between two levels, so it can never cross the book
                edits[side_name][(side.price_at(idx) + side.price_at(idx - 1)) // 2] = 7
        step = book.apply(list(edits["bids"].items()), list(edits["asks"].items()))
        for d, view in views.items():
            frame = view.update(step, TS)
            if frame is not None:
                assert _feed(sessions[d], frame) is Verdict.VERIFIED
    for d in views:
        ours = sessions[d].books["ETH/USD"]
        assert (ours.bids(), ours.asks()) == book.top(d)


def test_a_delete_and_an_insert_in_one_step_come_delete_first() -> None:
    """Kraken's order: the delete, the level republished at the edge, then the new level
    (which pushes the republished one out again: the one level beyond the depth Kraken
    sends)."""
    book = PairBook(guess_spec("BTC/USD"), random.Random(5))
    stream, session, _ = _script(book, 10)
    third, eleventh = book.asks.price_at(2), book.asks.price_at(10)
    first, second = book.asks.price_at(0), book.asks.price_at(1)
    assert second - first >= 2, "the scenario needs room between the two best asks"
    new = first + 1
    frame = stream.update(book.apply(asks=[(new, 777), (third, 0)]), TS)
    assert frame is not None
    assert _side_levels(frame, "asks") == [
        (third / 10, 0.0), (eleventh / 10, book.asks.qty[eleventh] / 10**8), (new / 10, 777e-8)]
    assert eleventh not in [p for p, _ in book.asks.top(10)]
    assert _feed(session, frame) is Verdict.VERIFIED


def _trim_each_level(
    view: dict[str, dict[int, int]], frame: dict[str, Any], depth: int, pscale: int,
    qscale: int,
) -> None:
    """A client that trims to the depth after every level (as python-kraken-sdk does)."""
    for name in ("asks", "bids"):
        side = view[name]
        for lv in frame["data"][0][name]:
            price = int(Decimal(repr(lv["price"])) * pscale)
            qty = int(Decimal(repr(lv["qty"])) * qscale)
            if qty:
                side[price] = qty
            else:
                side.pop(price, None)
            kept = sorted(side, reverse=name == "bids")[:depth]
            view[name] = side = {p: side[p] for p in kept}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.lists(_OP, min_size=1, max_size=8), min_size=1, max_size=25),
       seed=st.integers(0, 1000))
@pytest.mark.slow
def test_a_client_that_trims_after_every_level_stays_exact(
    steps: list[list[tuple[str, int, str]]], seed: int
) -> None:
    """Any edits, several deletes and inserts on both sides in one frame: applied level by
    level with a trim after each, the frames still give the simulator's book."""
    book = PairBook(guess_spec("ETH/USD"), random.Random(seed))
    views = {d: BookStream(book, d, random.Random(seed + d), duplicate_rate=0.3)
             for d in (10, 25)}
    clients: dict[int, dict[str, dict[int, int]]] = {}
    for d, stream in views.items():
        clients[d] = {"bids": {}, "asks": {}}
        _trim_each_level(clients[d], stream.snapshot(TS), d, book.pscale, book.qscale)
    rng = random.Random(seed)
    for ops in steps:
        edits: dict[str, dict[int, int]] = {"bids": {}, "asks": {}}
        for side_name, idx, kind in ops:
            side = book.bids if side_name == "bids" else book.asks
            if kind == "delete":
                edits[side_name][side.price_at(idx)] = 0
            elif kind == "change":
                edits[side_name][side.price_at(idx)] = rng.randint(1, 10**9)
            elif idx > 0 and abs(side.price_at(idx) - side.price_at(idx - 1)) > 1:
                edits[side_name][(side.price_at(idx) + side.price_at(idx - 1)) // 2] = 7
        step = book.apply(list(edits["bids"].items()), list(edits["asks"].items()))
        for d, stream in views.items():
            frame = stream.update(step, TS)
            if frame is not None:
                _trim_each_level(clients[d], frame, d, book.pscale, book.qscale)
            bids, asks = book.top(d)
            assert sorted(clients[d]["bids"].items(), reverse=True) == bids
            assert sorted(clients[d]["asks"].items()) == asks


def test_repeats_are_changed_levels_sent_twice_in_a_row() -> None:
    market = _market()
    book = market.book("SOL/USD")
    stream = BookStream(book, 10, random.Random(2), duplicate_rate=1.0)
    stream.snapshot(TS)
    repeats = 0
    for _ in range(300):
        frame = stream.update(market.step("SOL/USD"), TS)
        assert frame is not None
        for side in ("bids", "asks"):
            levels = _side_levels(frame, side)
            prices = [p for p, _ in levels]
            shape = "".join("D" if q == 0 else "U" for _, q in levels)
            assert "UD" not in shape, levels  # deletes first, whatever else
            for i in range(1, len(levels)):
                if prices[i] in prices[:i]:
                    repeats += 1
                    assert prices[i - 1] == prices[i] and levels[i - 1][1] and levels[i][1]
    assert repeats > 100


def test_views_stay_exact_while_a_shallow_book_deepens_for_new_subscribers() -> None:
    """A server builds a book for its first subscriber's depth; a deeper subscriber later
    deepens it. Every view verifies throughout, and each deeper one is full."""
    market = _market()
    book = market.book("BTC/USD", 10)
    streams: dict[int, BookStream] = {}
    sessions: dict[int, BookSession] = {}
    for depth in DEPTHS:
        streams[depth] = BookStream(market.book("BTC/USD", depth), depth, random.Random(depth))
        sessions[depth] = _session(market, "BTC/USD", depth)
        assert _feed(sessions[depth], streams[depth].snapshot(TS)) is Verdict.VERIFIED
        for _ in range(100):
            step = market.step("BTC/USD")
            for d, stream in streams.items():
                frame = stream.update(step, TS)
                if frame is not None:
                    assert _feed(sessions[d], frame) is Verdict.VERIFIED, d
    assert book.full
    for d in DEPTHS:
        bids, asks = book.top(d)
        assert len(bids) == len(asks) == d
        assert (sessions[d].books["BTC/USD"].bids(), sessions[d].books["BTC/USD"].asks()) == (
            bids, asks)
