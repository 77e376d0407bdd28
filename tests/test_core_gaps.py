"""The read-time gap rule (core/gaps.py)."""

from __future__ import annotations

from dataclasses import dataclass

from krakenstream.core.gaps import follows, mark_gaps


@dataclass(frozen=True)
class S:
    seq: int
    origin: str = "a"
    gap_before: bool = False


def test_a_continuous_series_has_no_mark() -> None:
    assert mark_gaps([S(1), S(2), S(3)], S(0)) == [False, False, False]


def test_the_first_ever_snapshot_is_marked_only_by_its_flag() -> None:
    assert mark_gaps([S(7), S(8)]) == [False, False]
    assert mark_gaps([S(7, gap_before=True), S(8)]) == [True, False]


def test_a_hole_in_seq_marks_the_snapshot_after_it() -> None:
    assert mark_gaps([S(1), S(2), S(4), S(5)], S(0)) == [False, False, True, False]


def test_the_predecessor_given_counts() -> None:
    assert mark_gaps([S(5)], S(3)) == [True]
    assert mark_gaps([S(5)], S(4)) == [False]


def test_another_origin_is_a_gap_even_with_the_next_seq() -> None:
    assert mark_gaps([S(1, "a"), S(2, "b")]) == [False, True]


def test_the_published_flag_always_marks() -> None:
    assert mark_gaps([S(1), S(2, gap_before=True)]) == [False, True]


def test_a_filled_hole_has_no_mark() -> None:
    """A late redelivery that fills the hole: once stored in order, nothing is marked."""
    assert mark_gaps([S(1), S(2), S(3)]) == [False, False, False]


def test_a_repeated_seq_is_a_gap() -> None:
    """A restart that starts counting again from 0 is not a continuation."""
    assert not follows(S(5), S(5))
    assert not follows(S(5), S(0))
