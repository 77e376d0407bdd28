"""``core/replay.py``: a recording's lines through fresh books, counted per pair; bad lines
counted with the first few reasons and their line numbers."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from krakenstream.core.replay import PairStats, replay_lines


def test_the_real_recording_verifies_frame_by_frame(shared_recording: Path) -> None:
    lines = shared_recording.read_bytes().splitlines()
    result = replay_lines(lines)
    st = result.pairs["BTC/USD"]
    books = sum(1 for ln in lines if ln.startswith(b'{"channel":"book"'))
    assert (result.lines, result.bad_frames, result.mismatches) == (len(lines), 0, 0)
    assert st.frames == st.verified == books
    assert (st.price_precision, st.qty_precision, st.depth) == (1, 8, 10)
    assert st.bid_levels == st.ask_levels == 10
    assert st.best_bid is not None and st.best_ask is not None
    assert float(st.best_bid) < float(st.best_ask)
    shallow = replay_lines(lines, depth=1000).pairs["BTC/USD"]
    assert shallow.depth == 1000  # the depth asked for, not the recorded one


def test_a_changed_checksum_is_a_mismatch_and_bad_lines_are_sampled(
    shared_recording: Path,
) -> None:
    lines = [ln.decode() for ln in shared_recording.read_bytes().splitlines()]
    update = next(i for i, ln in enumerate(lines) if '"type":"update"' in ln)
    lines[update] = re.sub(r'"checksum":(\d+)', lambda m: f'"checksum":{int(m[1]) ^ 1}',
                           lines[update])
    lines[5:5] = ["", "not json", "   ", "[]", "{", "nope", "again", "more"]
    result = replay_lines(lines, max_samples=3)
    assert result.pairs["BTC/USD"].mismatches == result.mismatches == 1
    assert result.bad_frames == 6  # blank lines are not frames
    assert [n for n, _ in result.bad_samples] == [7, 9, 10]  # 1-based line numbers
    assert all(reason for _, reason in result.bad_samples)


def test_every_counter_is_in_the_dict() -> None:
    st = PairStats(frames=3, verified=2, mismatches=1, best_bid="1.5")
    assert list(st.to_dict()) == [f.name for f in dataclasses.fields(st)]
    assert st.to_dict()["best_bid"] == "1.5" and st.to_dict()["mismatches"] == 1
