"""Times as the gateway and the CLI read and write them: one syntax on both sides of the wire.

A time is read from epoch milliseconds (``1764090000000``) or seconds (``1764090000``), ISO
8601 (``Z`` or an offset; a time with neither is UTC), or, where a "now" is given, a duration
before it (``90s``, ``15m``, ``2h``, ``1d``; the CLI's ``--since 1h``). The gateway has no
"now" to offer: a query string is absolute. Written times are ISO 8601 UTC with milliseconds
and a ``Z``.

Seconds and milliseconds are told apart by magnitude (:data:`SECONDS_RANGE`): a whole number
of 10 or 11 digits is read as seconds. As milliseconds it would fall between 12 January 1970
and March 1973, before any snapshot; as seconds it is September 2001 to the year 5138, where
every real time of ours is. Reading it as milliseconds returned everything, silently. Every
other number keeps its meaning in milliseconds (``0`` and ``1`` are still the first
milliseconds of 1970).

Pure: no clock (``now_ms`` is a parameter) and exact integer arithmetic throughout (no float
rounding to shift a millisecond, no overflow for an absurd duration). Errors are plain
:class:`ValueError` subclasses; each side words its own message, naming its query parameter
or its option.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

#: the largest epoch ms (either sign) accepted: 16 digits, about 300,000 years from 1970
MAX_EPOCH_MS = 10**16 - 1
#: whole numbers in this range (either sign) are epoch seconds, all others epoch milliseconds
SECONDS_RANGE = range(10**9, 10**11)

#: epoch ms or s as the HTTP API's schema declares them (a JSON Schema ``pattern``, anchored):
#: whole numbers of at most as many digits as MAX_EPOCH_MS, all read by parse_time; ISO 8601
#: times the schema declares as ``format: date-time`` (RFC 3339, which fromisoformat reads)
EPOCH_INPUT_PATTERN = rf"^-?[0-9]{{1,{len(str(MAX_EPOCH_MS))}}}$"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_INT = re.compile(r"-?([0-9]+)")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class BadTime(ValueError):
    """Text that is not a time in any accepted form."""


class TimeOutOfRange(BadTime):
    """A time more than :data:`MAX_EPOCH_MS` away from 1970."""


def parse_iso(text: str) -> datetime:
    """ISO 8601 as an aware datetime (a time without ``Z`` or an offset is UTC)."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadTime(f"not an ISO 8601 time: {text[:64]!r}") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def parse_time(text: str, *, now_ms: int | None = None) -> int:
    """Epoch milliseconds from epoch ms or seconds (told apart by :data:`SECONDS_RANGE`),
    ISO 8601, or (with ``now_ms``) a duration before now.

    Raises :class:`TimeOutOfRange` for a time beyond :data:`MAX_EPOCH_MS` either way, and
    :class:`BadTime` for anything else it cannot read.
    """
    value = text.strip()
    whole = _INT.fullmatch(value)
    if whole is not None:
        # refused before int(): no 4,300-digit conversion error, no huge integer to build
        if len(whole.group(1).lstrip("0")) > len(str(MAX_EPOCH_MS)):
            raise TimeOutOfRange(f"{text[:64]!r} is too far from 1970")
        ms = int(value)
        if abs(ms) in SECONDS_RANGE:
            ms *= 1000
    else:
        duration = _DURATION.fullmatch(value.lower()) if now_ms is not None else None
        if duration is not None and now_ms is not None:
            ms = now_ms - int(Decimal(duration.group(1)) * _UNIT_MS[duration.group(2)])
        else:
            ms = (parse_iso(value) - _EPOCH) // _MS
    if abs(ms) > MAX_EPOCH_MS:
        raise TimeOutOfRange(f"{text[:64]!r} is too far from 1970")
    return ms


def iso(dt: datetime) -> str:
    """A timezone-aware time as ISO 8601 UTC with milliseconds and a Z."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


#: day number since 1970 -> its date text: rendering a history formats one date per day, not
#: one per snapshot (``strftime`` is most of the cost of a time); renewed when full
_DATES: dict[int, str] = {}
_ISO_DATES: dict[int, str] = {}
_DAY_MS = 86_400_000


def _date(day: int) -> str:
    date = _DATES.get(day)
    if date is None:
        if len(_DATES) > 4096:
            _DATES.clear()
        date = _DATES[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")
    return date


def iso_ms(ts_ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds and a Z."""
    day, ms = divmod(ts_ms, _DAY_MS)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    seconds, ms = divmod(ms, 1_000)
    return f"{_date(day)}T{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}Z"


def iso_us(ts_us: int) -> str:
    """Epoch microseconds as Kraken writes a timestamp: ``2023-07-30T15:30:49.008834Z``
    (the date as ``isoformat`` writes it: four-digit years)."""
    day, us = divmod(ts_us, _DAY_MS * 1000)
    hours, us = divmod(us, 3_600_000_000)
    minutes, us = divmod(us, 60_000_000)
    seconds, us = divmod(us, 1_000_000)
    date = _ISO_DATES.get(day)
    if date is None:
        if len(_ISO_DATES) > 4096:
            _ISO_DATES.clear()
        date = _ISO_DATES[day] = (_EPOCH + timedelta(days=day)).date().isoformat()
    return f"{date}T{hours:02d}:{minutes:02d}:{seconds:02d}.{us:06d}Z"
