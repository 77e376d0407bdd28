"""Options several commands share: the time syntax of ``--since`` and ``--until``."""

from __future__ import annotations

import pytest

from krakenstream.cli.options import parse_when
from krakenstream.errors import InputError

NOW_MS = 1_764_090_000_000  # 2025-11-25T17:00:00Z


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1764090000000", 1_764_090_000_000),
        ("2025-11-25T17:00:00Z", NOW_MS),
        ("2025-11-25T17:00:00", NOW_MS),  # no zone: UTC
        ("2025-11-25T18:00:00+01:00", NOW_MS),
        ("2025-11-25T17:00:00.250Z", NOW_MS + 250),
        ("90s", NOW_MS - 90_000),
        ("15m", NOW_MS - 900_000),
        ("2h", NOW_MS - 7_200_000),
        ("1d", NOW_MS - 86_400_000),
        ("1.5h", NOW_MS - 5_400_000),
        ("500ms", NOW_MS - 500),
        ("2025-11-25T17:00:00.001Z", NOW_MS + 1),
        ("1999-12-31T23:59:59.999Z", 946_684_799_999),
    ],
)
def test_parse_when(given: str, expected: int) -> None:
    assert parse_when(given, now_ms=NOW_MS) == expected


@pytest.mark.parametrize("given", ["yesterday", "15 minutes", "2025-13-01", "",
                                   "9" * 400 + "d", "99999999999999999"])
def test_parse_when_refuses_with_the_option_name(given: str) -> None:
    with pytest.raises(InputError) as info:
        parse_when(given, now_ms=NOW_MS, option="--until")
    assert "--until" in str(info.value)
    assert info.value.hint and "--until 1h" in info.value.hint


def test_the_hints_examples_are_one_moment() -> None:
    with pytest.raises(InputError) as info:
        parse_when("yesterday", now_ms=NOW_MS)
    hint = info.value.hint or ""
    examples = [word for word in hint.replace(",", " ").split()
                if word[0].isdigit() and not word.endswith("h")]
    assert len(examples) == 3
    assert {parse_when(e, now_ms=NOW_MS) for e in examples} == {NOW_MS}
