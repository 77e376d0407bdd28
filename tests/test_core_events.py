"""``core/events.py``: the decoded frames' values: a full book told from an update by Kraken's
own word, and a bad frame kept short and as text."""

from __future__ import annotations

import dataclasses

import pytest

from krakenstream.core.events import BadFrame, BookMessage, Precision


def test_a_full_book_is_krakens_snapshot_type() -> None:
    assert BookMessage("snapshot", []).is_full_book
    assert not BookMessage("update", []).is_full_book


def test_a_bad_frame_keeps_200_characters_of_text() -> None:
    long = "x" * 1000
    assert BadFrame.of("not JSON", long) == BadFrame("not JSON", "x" * 200)
    assert BadFrame.of("not UTF-8", b"\xff\xfeok").text == "\ufffd\ufffdok"  # never raises
    assert BadFrame.of("short", "{}").text == "{}"


def test_values_are_frozen() -> None:
    p = Precision(price=1, qty=8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.price = 2  # type: ignore[misc]
    assert p == Precision(1, 8) and hash(p) == hash(Precision(1, 8))
