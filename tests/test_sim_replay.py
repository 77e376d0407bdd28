"""``sim/replay.py``: a recorded file made ready for the simulator: book frames kept as
recorded, split by symbol with their delays, precisions and depths found, garbage skipped."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from krakenstream.core.events import Precision
from krakenstream.errors import InputError
from krakenstream.sim.replay import MAX_DELAY, load_recording, parse_recording


def book(symbol: str, ts: str | None, kind: str = "update", levels: int = 1) -> bytes:
    item: dict[str, object] = {"symbol": symbol, "bids": [{"price": 1.5, "qty": 2.0}] * levels,
                               "asks": [], "checksum": 0}
    if ts is not None:
        item["timestamp"] = ts
    return orjson.dumps({"channel": "book", "type": kind, "data": [item]})


def test_the_real_recording_is_kept_byte_for_byte(shared_recording: Path) -> None:
    rec = load_recording(shared_recording)
    lines = [ln for ln in shared_recording.read_bytes().splitlines() if ln.strip()]
    assert rec.lines == len(lines) and rec.skipped == 0
    assert [frame for _, frame in rec.frames["BTC/USD"]] == [
        ln for ln in lines if ln.startswith(b'{"channel":"book"')]
    assert rec.instrument == lines[0]  # the recorded instrument frame, as recorded
    assert rec.precisions["BTC/USD"] == Precision(1, 8)
    assert rec.depths["BTC/USD"] == 10  # from its subscribe ack
    delays = [d for d, _ in rec.frames["BTC/USD"]]
    assert delays[0] == 0.0 and all(0.0 <= d <= MAX_DELAY for d in delays)


def test_delays_follow_the_timestamps_per_symbol_capped() -> None:
    rec = parse_recording([
        book("A/USD", "2026-01-01T00:00:00.000000Z", "snapshot", levels=30),
        book("B/USD", "2026-01-01T00:00:00.500000Z"),
        book("A/USD", "2026-01-01T00:00:01.250000Z"),
        book("A/USD", "2026-01-01T00:01:00.000000Z"),  # a minute's silence: capped
        book("A/USD", "2026-01-01T00:00:59.000000Z"),  # out of order: no negative wait
        book("A/USD", None),
    ] + [b'{"channel":"instrument","type":"snapshot","data":{"assets":[],"pairs":['
         b'{"symbol":"A/USD","price_precision":1,"qty_precision":8},'
         b'{"symbol":"B/USD","price_precision":2,"qty_precision":4}]}}'])
    assert [d for d, _ in rec.frames["A/USD"]] == [0.0, 1.25, MAX_DELAY, 0.0, 0.0]
    assert [d for d, _ in rec.frames["B/USD"]] == [0.0]
    assert rec.depths == {"A/USD": 100, "B/USD": 10}  # the snapshot's size, rounded up


@pytest.mark.parametrize("junk", [
    b"not json", b"[1, 2]", b'{"channel":"book","data":[]}',
    b'{"channel":"book","type":"update","data":[{"symbol":"A/USD"},{"symbol":"B/USD"}]}',
])
def test_lines_that_are_no_book_frame_are_skipped(junk: bytes) -> None:
    with pytest.raises(InputError, match="holds no book frames to replay") as caught:
        parse_recording([junk, b"", b"   "], name="x.jsonl")
    assert caught.value.hint == "the file must hold raw Kraken v2 frames, one per line"


def test_a_symbol_whose_precision_cannot_be_told_is_refused() -> None:
    with pytest.raises(InputError, match="cannot tell the precision of A/USD"):
        parse_recording([book("A/USD", None)], name="x.jsonl")


def test_an_unreadable_file_says_why(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the recording"):
        load_recording(tmp_path / "missing.jsonl")
