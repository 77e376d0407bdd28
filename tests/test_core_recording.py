"""The real recording of Kraken's v2 BTC/USD book (2023-07-30, depth 10, precision 1/8):
every one of its 510 book frames must verify, through the session and the replay."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from krakenstream.core.book import Verdict
from krakenstream.core.replay import replay_lines
from krakenstream.core.session import BookSession
from reference_book import RefBook


def book_frames(path: Path) -> list[dict]:  # type: ignore[type-arg]
    frames = [json.loads(line, parse_float=Decimal) for line in path.read_text().splitlines()]
    return [f for f in frames if f.get("channel") == "book"]


def test_all_510_book_frames_verify(shared_recording: Path) -> None:
    session = BookSession()
    verdicts = []
    for line in shared_recording.read_bytes().splitlines():
        _, results = session.receive(line)
        verdicts += [r.verdict for r in results]
    assert len(verdicts) == 510
    assert set(verdicts) == {Verdict.VERIFIED}
    book = session.books["BTC/USD"]
    assert (book.bid_levels, book.ask_levels) == (10, 10)
    assert book.valid


def test_replay_statistics(shared_recording: Path) -> None:
    with shared_recording.open("rb") as fh:
        result = replay_lines(fh)
    st = result.pairs["BTC/USD"]
    assert (st.frames, st.verified, st.mismatches, st.crossed) == (510, 510, 0, 0)
    assert (st.best_bid, st.best_ask) == ("29430.4", "29430.5")
    assert (st.price_precision, st.qty_precision, st.depth) == (1, 8, 10)
    assert result.bad_frames == 0


def test_reference_book_agrees_on_every_frame(shared_recording: Path) -> None:
    session = BookSession()
    ref = RefBook(10, 1, 8)
    lines = shared_recording.read_bytes().splitlines()
    for line in lines:
        _, results = session.receive(line)
        frame = json.loads(line, parse_float=Decimal)
        if frame.get("channel") != "book":
            continue
        d = frame["data"][0]
        ref.apply([(lv["price"], lv["qty"]) for lv in d["bids"]],
                  [(lv["price"], lv["qty"]) for lv in d["asks"]],
                  full_book=frame["type"] == "snapshot")
        assert ref.checksum() == d["checksum"]
        book = results[0].book
        assert [(Decimal(p) / 10, Decimal(q) / 10**8) for p, q in book.bids()] == ref.sorted_bids()
        assert [(Decimal(p) / 10, Decimal(q) / 10**8) for p, q in book.asks()] == ref.sorted_asks()


def test_duplicate_price_in_one_frame_applied_in_order(shared_recording: Path) -> None:
    frames = book_frames(shared_recording)
    frame = frames[235]  # "frame 236" counting from 1
    prices = [lv["price"] for lv in frame["data"][0]["bids"]]
    assert prices.count(Decimal("29430.3")) == 2

    def checksum_at_236(reverse: bool) -> int:
        ref = RefBook(10, 1, 8)
        for i, f in enumerate(frames[:236]):
            d = f["data"][0]
            bids = [(lv["price"], lv["qty"]) for lv in d["bids"]]
            if i == 235 and reverse:
                bids.reverse()
            ref.apply(bids, [(lv["price"], lv["qty"]) for lv in d["asks"]],
                      full_book=f["type"] == "snapshot")
        return ref.checksum()

    assert checksum_at_236(reverse=False) == 3393952446 == frame["data"][0]["checksum"]
    assert checksum_at_236(reverse=True) == 3951042300


def test_skipping_truncation_breaks_450_frames(shared_recording: Path) -> None:
    ref = RefBook(10, 1, 8, truncate=False)
    broken = 0
    for f in book_frames(shared_recording):
        d = f["data"][0]
        ref.apply([(lv["price"], lv["qty"]) for lv in d["bids"]],
                  [(lv["price"], lv["qty"]) for lv in d["asks"]],
                  full_book=f["type"] == "snapshot")
        broken += ref.checksum() != d["checksum"]
    assert broken == 450


def test_wrong_depth_is_caught_by_the_checksum(shared_recording: Path) -> None:
    with shared_recording.open("rb") as fh:
        result = replay_lines(fh, depth=25)
    assert result.pairs["BTC/USD"].mismatches > 0
