"""Property tests: the fast book against the naive reference book, on random frames.

Random full books and updates over random precisions (0–10) and every Kraken depth, with
levels beyond the depth, deletes of absent prices, the same price twice in a frame, numbers
written with trailing zeros, in exponent form, and too large for a float to hold exactly.
Every frame carries the reference book's checksum, so the fast book must verify every frame
and hold exactly the reference's levels.
"""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from krakenstream.core.book import Verdict
from krakenstream.core.session import BookSession
from krakenstream.core.snapshot import Snapshot
from reference_book import RefBook

#: hypothesis over books up to 1000 levels deep: ~10 s a test
pytestmark = pytest.mark.slow

SYMBOL = "TST/USD"
MID = 50_000


def number_text(value: Decimal, style: int, extra_zeros: int) -> str:
    """The same decimal written the several ways a JSON encoder may write it."""
    if style == 0:  # plain, shortest
        text = format(value.normalize(), "f")
    elif style == 1:  # exponent form, e.g. 1.2345e-05
        text = format(value.normalize(), "e")
    else:  # fixed with trailing zeros beyond what is needed
        text = format(value.normalize(), "f")
        if "." not in text:
            text += "."
        text += "0" * (extra_zeros or 1)
    return text


@st.composite
def level(draw: st.DrawFn, side: str, pp: int, qp: int, spread: int) -> tuple[int, int]:
    offset = draw(st.integers(1, spread))
    price = MID - offset if side == "bid" else MID + offset
    qty = draw(st.one_of(
        st.just(0),
        st.integers(1, 10**6),
        st.integers(1, 2**62),  # beyond a float's exact range: the exact decoder takes over
    ))
    return price, qty


@st.composite
def scenario(draw: st.DrawFn) -> tuple[int, int, int, list[tuple[bool, list, list]], list]:  # type: ignore[type-arg]
    pp = draw(st.integers(0, 10))
    qp = draw(st.integers(0, 10))
    depth = draw(st.sampled_from([10, 25, 100, 500, 1000]))
    spread = draw(st.sampled_from([15, 40, depth + 30]))
    frames = []
    n_updates = draw(st.integers(0, 25))
    for i in range(n_updates + 1):
        full_book = i == 0
        max_levels = depth + 20 if full_book else 12
        bids = draw(st.lists(level("bid", pp, qp, spread), max_size=max_levels))
        asks = draw(st.lists(level("ask", pp, qp, spread), max_size=max_levels))
        if full_book:
            bids = [(p, q or 1) for p, q in bids]
            asks = [(p, q or 1) for p, q in asks]
        frames.append((full_book, bids, asks))
    styles = draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 4)), min_size=1,
                           max_size=8))
    return pp, qp, depth, frames, styles


def frame_text(full_book: bool, bids: list[tuple[int, int]], asks: list[tuple[int, int]],
               pp: int, qp: int, checksum: int, styles: list[tuple[int, int]]) -> bytes:
    def levels(side: list[tuple[int, int]]) -> str:
        out = []
        for i, (p, q) in enumerate(side):
            s1, z1 = styles[i % len(styles)]
            s2, z2 = styles[(i + 1) % len(styles)]
            price = number_text(Decimal(p).scaleb(-pp), s1, z1)
            qty = number_text(Decimal(q).scaleb(-qp), s2, z2)
            out.append(f'{{"price":{price},"qty":{qty}}}')
        return "[" + ",".join(out) + "]"

    kind = "snapshot" if full_book else "update"
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{SYMBOL}",'
        f'"bids":{levels(bids)},"asks":{levels(asks)},"checksum":{checksum},'
        f'"timestamp":"2023-07-30T15:29:58.343415Z"}}]}}'
    ).encode()


def instrument(pp: int, qp: int) -> bytes:
    return orjson.dumps({"channel": "instrument", "type": "snapshot", "data": {"pairs": [
        {"symbol": SYMBOL, "price_precision": pp, "qty_precision": qp}]}})


def ack(depth: int) -> bytes:
    return orjson.dumps({"method": "subscribe", "req_id": 1, "success": True, "result": {
        "channel": "book", "depth": depth, "snapshot": True, "symbol": SYMBOL}})


def as_decimal(levels: list[tuple[int, int]], pp: int, qp: int) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p).scaleb(-pp), Decimal(q).scaleb(-qp)) for p, q in levels]


def scaled(levels: list[tuple[Decimal, Decimal]], pp: int, qp: int) -> tuple[
        tuple[int, int], ...]:
    return tuple((int(p.scaleb(pp)), int(q.scaleb(qp))) for p, q in levels)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(scenario())
# 829452312479088.3 (16 digits): its nearest double also divides back from ...882, not ...883
@example((0, 1, 10, [(True, [], [(50001, 8_294_523_124_790_883)])], [(0, 0)]))
def test_fast_book_matches_reference(case: tuple) -> None:  # type: ignore[type-arg]
    pp, qp, depth, frames, styles = case
    session = BookSession()
    session.receive(instrument(pp, qp))
    session.receive(ack(depth))
    ref = RefBook(depth, pp, qp)
    taken: list[tuple[Snapshot, Snapshot]] = []
    for k, (full_book, bids, asks) in enumerate(frames):
        ref.apply(as_decimal(bids, pp, qp), as_decimal(asks, pp, qp), full_book=full_book)
        text = frame_text(full_book, bids, asks, pp, qp, ref.checksum(), styles)
        event, results = session.receive(text)
        assert event is None, event
        (result,) = results
        assert result.verdict is Verdict.VERIFIED, (result.verdict, text[:300])
        book = result.book
        assert book.depth == depth
        assert as_decimal(book.bids(), pp, qp) == ref.sorted_bids()
        assert as_decimal(book.asks(), pp, qp) == ref.sorted_asks()
        # the snapshot of the book (from_book's fast path) holds the reference's levels
        snap = Snapshot.from_book(book, ts=k, seq=k + 1, gap_before=full_book, origin="o")
        want = Snapshot(SYMBOL, k, book.timestamp, k + 1, pp, qp,
                        scaled(ref.sorted_bids(), pp, qp), scaled(ref.sorted_asks(), pp, qp),
                        ref.checksum(), full_book, "o")
        assert snap == want and type(snap) is Snapshot
        taken.append((snap, want))
    # the book moved on frame after frame: each snapshot still holds what it was given
    assert all(snap == want for snap, want in taken)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(scenario(), st.integers(1, 2**32 - 1))
def test_any_wrong_checksum_is_a_mismatch(case: tuple, delta: int) -> None:  # type: ignore[type-arg]
    pp, qp, depth, frames, styles = case
    session = BookSession()
    session.receive(instrument(pp, qp))
    session.receive(ack(depth))
    ref = RefBook(depth, pp, qp)
    full_book, bids, asks = frames[0]
    ref.apply(as_decimal(bids, pp, qp), as_decimal(asks, pp, qp), full_book=True)
    wrong = (ref.checksum() + delta) % 2**32
    _, results = session.receive(frame_text(True, bids, asks, pp, qp, wrong, styles))
    assert results[0].verdict is Verdict.MISMATCH
    assert not results[0].book.valid
