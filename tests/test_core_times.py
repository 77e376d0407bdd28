"""Reading and writing times (core/times.py): the one syntax of the gateway and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krakenstream.core.times import (
    EPOCH_INPUT_PATTERN,
    MAX_EPOCH_MS,
    BadTime,
    TimeOutOfRange,
    iso,
    iso_ms,
    iso_us,
    parse_iso,
    parse_time,
)

NOW_MS = 1_764_090_000_000  # 2025-11-25T17:00:00Z


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1795628858600", 1795628858600),
        ("-1", -1),
        (" 0000000000000000001 ", 1),  # zero-padded: the value counts, not the digits
        ("2026-11-25T17:00:00Z", 1795626000000),
        ("2026-11-25T17:00:00.250Z", 1795626000250),
        ("2026-11-25T18:00:00+01:00", 1795626000000),
        ("2026-11-25T17:00:00", 1795626000000),  # naive = UTC
        (str(MAX_EPOCH_MS), MAX_EPOCH_MS),
        (str(-MAX_EPOCH_MS), -MAX_EPOCH_MS),
    ],
)
def test_absolute_times_read_the_same_with_or_without_a_now(given: str, expected: int) -> None:
    assert parse_time(given) == expected
    assert parse_time(given, now_ms=NOW_MS) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1764090000", 1_764_090_000_000),  # epoch seconds: 10 digits
        ("1764090000.5", None),  # not a whole number: neither
        ("-1764090000", -1_764_090_000_000),
        ("1000000000", 1_000_000_000_000),  # the smallest read as seconds (2001-09-09)
        ("99999999999", 99_999_999_999_000),  # the largest (the year 5138)
        ("999999999", 999_999_999),  # below: milliseconds, as always (1970-01-12)
        ("100000000000", 100_000_000_000),  # above: milliseconds (1973-03-03)
        ("1764090000000", 1_764_090_000_000),
    ],
)
def test_seconds_and_milliseconds_are_told_apart_by_magnitude(given: str,
                                                               expected: int | None) -> None:
    if expected is None:
        with pytest.raises(BadTime):
            parse_time(given)
    else:
        assert parse_time(given) == expected == parse_time(given, now_ms=NOW_MS)
    assert parse_time("1764090000") == parse_time("2025-11-25T17:00:00Z")


@pytest.mark.parametrize(
    ("given", "ago_ms"),
    [("90s", 90_000), ("15m", 900_000), ("2h", 7_200_000), ("1d", 86_400_000),
     ("1.5h", 5_400_000), ("500ms", 500), ("2 H", 7_200_000), ("0s", 0)],
)
def test_durations_count_back_from_now(given: str, ago_ms: int) -> None:
    assert parse_time(given, now_ms=NOW_MS) == NOW_MS - ago_ms


def test_durations_need_a_now() -> None:
    with pytest.raises(BadTime):
        parse_time("15m")  # a query string has no "now": not a time there


@pytest.mark.parametrize("given", ["yesterday", "15 minutes", "2025-13-01", "", "1h ago",
                                   "٣٠٠٠", "1e3"])
def test_unreadable_times_are_bad_times(given: str) -> None:
    with pytest.raises(BadTime) as info:
        parse_time(given, now_ms=NOW_MS)
    assert not isinstance(info.value, TimeOutOfRange)


@pytest.mark.parametrize("given", ["9" * 400 + "d", "99999999999999999", "-99999999999999999",
                                   "1" * 5000, str(MAX_EPOCH_MS + 1)])
def test_times_beyond_the_range_are_refused_without_building_them(given: str) -> None:
    with pytest.raises(TimeOutOfRange):
        parse_time(given, now_ms=NOW_MS)


def test_parse_iso_is_aware_and_utc_by_default() -> None:
    assert parse_iso("2026-11-25T17:00:00") == datetime(2026, 11, 25, 17, tzinfo=UTC)
    plus_one = parse_iso(" 2026-11-25T18:00:00+01:00 ")
    assert plus_one.utcoffset() == timedelta(hours=1)
    assert plus_one == datetime(2026, 11, 25, 17, tzinfo=UTC)
    with pytest.raises(ValueError):  # BadTime is a ValueError: callers may catch either
        parse_iso("not a time")


def test_iso_ms() -> None:
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(1_690_730_998_343) == "2023-07-30T15:29:58.343Z"
    assert parse_time(iso_ms(1_690_730_998_343)) == 1_690_730_998_343


def test_iso_is_utc_with_milliseconds() -> None:
    east = timezone(timedelta(hours=2))
    assert iso(datetime(2026, 11, 25, 19, 0, 0, 250_999, tzinfo=east)) == (
        "2026-11-25T17:00:00.250Z")
    assert iso(datetime(1970, 1, 1, tzinfo=UTC)) == iso_ms(0)


@given(st.integers(-62_135_596_800_000, 253_402_300_799_999))
def test_iso_ms_is_the_calendar_time(ts_ms: int) -> None:
    """The arithmetic (a date per day, the time of day by division) against datetime's own
    formatting of the same instant, over years 1 to 9999."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts_ms)
    assert iso_ms(ts_ms) == dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


@given(st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999))
def test_iso_us_is_the_calendar_time(ts_us: int) -> None:
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts_us)
    assert iso_us(ts_us) == dt.isoformat(timespec="microseconds")[:-6] + "Z"


@given(st.from_regex(EPOCH_INPUT_PATTERN, fullmatch=True)
       | st.datetimes(timezones=st.timezones()).map(lambda dt: dt.isoformat()))
def test_every_time_the_schema_declares_is_read(text: str) -> None:
    """The HTTP schema's since/until: an epoch number its pattern allows, or an RFC 3339
    time (format date-time): parse_time reads each, none is refused."""
    parse_time(text)
