"""The simulator's random walk: a deep, positive, uncrossed book that moves one side a step."""

from __future__ import annotations

import random

import pytest

from krakenstream.core.checksum import checksum as crc_checksum
from krakenstream.sim.market import DEFAULT_PAIRS, Market
from krakenstream.sim.specs import guess_spec, synthetic_specs
from krakenstream.sim.walk import MIN_LEVELS, SHALLOW_MARGIN, PairBook


def _market(seed: int = 11) -> Market:
    return Market([*DEFAULT_PAIRS, *synthetic_specs(10, seed)], seed=seed)


def test_apply_refuses_to_cross_or_empty_and_leaves_the_book_alone() -> None:
    book = PairBook(guess_spec("ETH/USD"), random.Random(9))
    before = book.top(20)
    with pytest.raises(ValueError, match="cross"):
        book.apply(bids=[(book.asks.price_at(0), 5)])
    assert book.top(20) == before
    with pytest.raises(ValueError, match="empty"):
        book.apply(asks=[(p, 0) for p, _ in book.asks.top(5000)])
    assert book.top(20) == before
    assert len(book.asks) >= MIN_LEVELS


def test_the_walk_stays_deep_positive_uncrossed_and_moves() -> None:
    market = _market()
    for symbol in ("PEPE/USD", "ETH/BTC", "BTC/USD"):
        book = market.book(symbol)
        start_mid = book.bids.price_at(0) + book.asks.price_at(0)
        mids = set()
        for _ in range(2000):
            market.step(symbol)
            best_bid, best_ask = book.bids.price_at(0), book.asks.price_at(0)
            assert best_bid < best_ask
            mids.add(best_bid + best_ask)
        for side in (book.bids, book.asks):
            assert MIN_LEVELS <= len(side)
            assert side.keys == sorted(side.keys)
            assert len(set(side.keys)) == len(side.keys) == len(side.qty)
            assert all(p > 0 and q > 0 for p, q in side.qty.items())
        assert len(mids) > 20, f"{symbol}: the mid hardly moved"
        assert start_mid in mids or len(mids) > 20


def test_a_step_moves_one_side_of_the_top_ten() -> None:
    """Kraken's frames carry one side each: each step's events in the top 10 (what every
    view sees) are on one side; deeper events, seen by deeper views, on the same side."""
    market = _market()
    for symbol in ("BTC/USD", "DOGE/USD", "SYN0009/USD"):
        book = market.book(symbol)
        for _ in range(500):
            before = book.top(10)
            step = market.step(symbol)
            after = book.top(10)
            moved = [side for side, b, a in zip((book.bids, book.asks), before, after,
                                                strict=True) if b != a]
            assert len(moved) == 1, (symbol, step)
            # on the other side only the upkeep (keeping 1050-1250 levels), beyond any view
            still = book.asks if moved[0] is book.bids else book.bids
            changes = step.asks if still is book.asks else step.bids
            assert all(still.sign * p > still.keys[1000] for p, _, _ in changes), step


def test_every_step_changes_the_top_ten() -> None:
    market = _market(3)
    book = market.book("ETH/USD")
    for _ in range(300):
        before = book.top(10)
        market.step("ETH/USD")
        assert book.top(10) != before


def test_the_same_seed_walks_the_same_way() -> None:
    def walk(seed: int) -> list[object]:
        book = PairBook(guess_spec("SOL/USD"), random.Random(seed))
        return [book.step() for _ in range(100)]

    assert walk(1) == walk(1)
    assert walk(1) != walk(2)


@pytest.mark.parametrize("symbol", ["PEPE/USD", "USDT/USD"])
def test_tight_books_still_step(symbol: str) -> None:
    """Where neighbouring levels sit one tick apart a new level may find no room: the event
    turns into a change, so a step still shows in every view."""
    market = _market()
    book = market.book(symbol)
    for _ in range(300):
        before = book.top(10)
        market.step(symbol)
        assert book.top(10) != before


def test_a_book_kept_for_shallow_views_stays_within_its_levels() -> None:
    """Built for depth 10, a book keeps 60..120 levels a side (not 1050..1250), and walks
    as a full one does: positive, sorted, uncrossed, moving."""
    market = _market()
    for symbol in ("PEPE/USD", "BTC/USD", "SYN0009/USD"):
        book = market.book(symbol, 10)
        assert not book.full
        mids = set()
        for _ in range(2000):
            market.step(symbol)
            assert book.bids.price_at(0) < book.asks.price_at(0)
            mids.add(book.bids.price_at(0) + book.asks.price_at(0))
            for side in (book.bids, book.asks):
                assert 10 + SHALLOW_MARGIN <= len(side) <= 2 * (10 + SHALLOW_MARGIN)
        for side in (book.bids, book.asks):
            assert side.keys == sorted(side.keys)
            assert len(set(side.keys)) == len(side.keys) == len(side.qty)
            assert all(p > 0 and q > 0 for p, q in side.qty.items())
        assert len(mids) > 20, f"{symbol}: the mid hardly moved"


def test_a_shallow_book_deepens_for_a_deeper_view_and_never_shrinks() -> None:
    market = _market()
    book = market.book("ETH/USD", 10)
    top = book.top(10)
    book.reach(100)
    assert book.top(10) == top  # levels added behind, none moved
    assert len(book.bids) >= 100 + SHALLOW_MARGIN and not book.full
    book.reach(25)
    assert len(book.bids) >= 100 + SHALLOW_MARGIN
    assert market.book("ETH/USD", 1000) is book and book.full
    for _ in range(200):
        market.step("ETH/USD")
    assert min(len(book.bids), len(book.asks)) >= MIN_LEVELS


def test_the_same_seed_walks_the_same_way_in_a_shallow_book() -> None:
    def walk(seed: int) -> list[object]:
        book = PairBook(guess_spec("SOL/USD"), random.Random(seed), 10)
        return [book.step() for _ in range(300)]

    assert walk(1) == walk(1)
    assert walk(1) != walk(2)


def test_the_checksum_is_kraken_s_of_the_top_ten() -> None:
    """Each side keeps its checksum text as levels change; it is always the core's CRC32 of
    the top 10, through steps, hand edits and a deepening."""
    book = PairBook(guess_spec("DOGE/USD"), random.Random(4), 10)
    for i in range(500):
        if i == 250:
            book.reach(500)
        if i % 50 == 7:
            step = book.apply(asks=[(p, 0) for p, _ in book.asks.top(12)[::2]])
        else:
            step = book.step()
        assert step.checksum == crc_checksum(book.asks.top(10), book.bids.top(10))
