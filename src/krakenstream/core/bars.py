"""Bars: a pair's snapshots summed up per fixed interval (1m, 5m, 1h, …), exactly.

Per interval: the mid's open, high, low and close; the spread's mean and max, absolute and in
basis points; the microprice at the close; the mean top-10 imbalance; how many snapshots fell
inside; and whether a gap falls inside (a snapshot of the bar is marked ``gap_before``: some
snapshots just before it are missing). An interval with no snapshot has no bar.

Intervals are aligned on the epoch in UTC (a 1h bar starts on the hour, a 1d bar at
midnight UTC) and named by their start. Pure and streaming: feed snapshots oldest first with
their gap marks to :class:`BarBuilder`; each bar comes out as soon as the next one starts.

Prices stay exact: open/high/low/close and the maxima are the snapshots' own decimals; a mean
is the exact sum over the count, rounded half-even to a stated number of decimals (the
price's decimals plus 4 for the spread, 4 for basis points, 6 for the imbalance).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from ..errors import InputError
from .snapshot import Snapshot
from .times import iso_ms

#: the columns of a bar, in order (CSV header, JSON keys)
BAR_COLUMNS = (
    "time", "pair", "snapshots", "gap", "open", "high", "low", "close", "spread_mean",
    "spread_max", "spread_bps_mean", "spread_bps_max", "microprice_close", "imbalance_mean",
)

_EVERY = re.compile(r"^([1-9]\d{0,5})(s|m|h|d)$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
#: the longest bar: a week
MAX_EVERY_MS = 7 * 86_400_000
#: intervals as the HTTP API's schema declares them (a JSON Schema ``pattern``): each unit up
#: to as many digits as stay within a week (99999s, 9999m, 99h, 7d), every one read by
#: parse_every; the longest of each unit it also takes (604800s, 10080m, 168h) are left out
#: of the pattern rather than spelt digit by digit
EVERY_INPUT_PATTERN = r"^(?:[1-9][0-9]{0,4}s|[1-9][0-9]{0,3}m|[1-9][0-9]?h|[1-7]d)$"
#: enough digits that a sum of a million 30-digit values is exact
_CTX = Context(prec=60, rounding=ROUND_HALF_EVEN)


def parse_every(text: str) -> int:
    """A bar interval (``30s``, ``1m``, ``5m``, ``1h``, ``1d``) in milliseconds."""
    match = _EVERY.match(text.strip().lower())
    if not match:
        raise InputError(f"every {text!r}: expected a count and a unit, such as 1m, 5m or 1h",
                         hint="units: s, m, h, d")
    ms = int(match.group(1)) * _UNIT_MS[match.group(2)]
    if ms > MAX_EVERY_MS:
        raise InputError(f"every {text!r}: at most a week (7d)")
    return ms


def bar_start(ts: int, every_ms: int) -> int:
    """The start of the interval holding ``ts``."""
    return ts - ts % every_ms


def _mean(total: Decimal, n: int, decimals: int) -> Decimal | None:
    if n == 0:
        return None
    return _CTX.divide(total, Decimal(n)).quantize(Decimal(1).scaleb(-decimals), context=_CTX)


@dataclass
class Bar:
    """One interval of one pair (see the module)."""

    pair: str
    start: int
    every_ms: int
    price_precision: int
    snapshots: int = 0
    gap: bool = False
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    close: Decimal | None = None
    microprice_close: Decimal | None = None
    spread_max: Decimal | None = None
    spread_bps_max: Decimal | None = None
    _spread_sum: Decimal = field(default=Decimal(0), repr=False)
    _spread_n: int = field(default=0, repr=False)
    _bps_sum: Decimal = field(default=Decimal(0), repr=False)
    _bps_n: int = field(default=0, repr=False)
    _imb_sum: Decimal = field(default=Decimal(0), repr=False)
    _imb_n: int = field(default=0, repr=False)

    def add(self, snap: Snapshot, gap_before: bool) -> None:
        self.snapshots += 1
        self.gap = self.gap or gap_before
        self.price_precision = max(self.price_precision, snap.price_precision)
        mid = snap.mid
        if mid is not None:
            if self.open is None:
                self.open = mid
            self.high = mid if self.high is None else max(self.high, mid)
            self.low = mid if self.low is None else min(self.low, mid)
            self.close = mid
        micro = snap.microprice
        if micro is not None:
            self.microprice_close = micro
        spread, bps, imb = snap.spread, snap.spread_bps, snap.imbalance()
        if spread is not None:
            self._spread_sum = _CTX.add(self._spread_sum, spread)
            self._spread_n += 1
            self.spread_max = spread if self.spread_max is None else max(self.spread_max, spread)
        if bps is not None:
            self._bps_sum = _CTX.add(self._bps_sum, bps)
            self._bps_n += 1
            self.spread_bps_max = bps if self.spread_bps_max is None else max(
                self.spread_bps_max, bps)
        if imb is not None:
            self._imb_sum = _CTX.add(self._imb_sum, imb)
            self._imb_n += 1

    @property
    def spread_mean(self) -> Decimal | None:
        return _mean(self._spread_sum, self._spread_n, self.price_precision + 4)

    @property
    def spread_bps_mean(self) -> Decimal | None:
        return _mean(self._bps_sum, self._bps_n, 4)

    @property
    def imbalance_mean(self) -> Decimal | None:
        return _mean(self._imb_sum, self._imb_n, 6)

    @property
    def time(self) -> str:
        return iso_ms(self.start)

    def values(self) -> tuple[Any, ...]:
        """The bar as :data:`BAR_COLUMNS` (Decimals, None where nothing was measured)."""
        return (
            self.time, self.pair, self.snapshots, self.gap, self.open, self.high, self.low,
            self.close, self.spread_mean, self.spread_max, self.spread_bps_mean,
            self.spread_bps_max, self.microprice_close, self.imbalance_mean,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: decimals as exact text, ``ts`` (epoch ms of the start) added."""
        out: dict[str, Any] = {"ts": self.start}
        for key, value in zip(BAR_COLUMNS, self.values(), strict=True):
            out[key] = str(value) if isinstance(value, Decimal) else value
        return out

    def csv_row(self) -> list[str]:
        out: list[str] = []
        for value in self.values():
            if isinstance(value, bool):
                out.append("1" if value else "0")
            else:
                out.append("" if value is None else str(value))
        return out


class BarBuilder:
    """Snapshots (oldest first, with their gap marks) in, finished bars out."""

    def __init__(self, every_ms: int) -> None:
        if every_ms <= 0:
            raise ValueError("every_ms must be positive")
        self.every_ms = every_ms
        self._bar: Bar | None = None
        self._last_ts: int | None = None

    def add(self, snap: Snapshot, gap_before: bool = False) -> Bar | None:
        """Add one snapshot; returns the bar it closed, if it started a new one."""
        if self._last_ts is not None and snap.ts <= self._last_ts:
            return None  # repeated or out of order: a series is read oldest first, once each
        self._last_ts = snap.ts
        start = bar_start(snap.ts, self.every_ms)
        done: Bar | None = None
        if self._bar is not None and self._bar.start != start:
            done, self._bar = self._bar, None
        if self._bar is None:
            self._bar = Bar(snap.pair, start, self.every_ms, snap.price_precision)
        self._bar.add(snap, gap_before)
        return done

    def finish(self) -> Bar | None:
        """The last, open bar (None if nothing was added since the last one)."""
        bar, self._bar = self._bar, None
        return bar


def bars(marked: Iterable[tuple[Snapshot, bool]], every_ms: int) -> Iterator[Bar]:
    """Bars of ``(snapshot, gap_before)`` pairs given oldest first."""
    builder = BarBuilder(every_ms)
    for snap, gap in marked:
        done = builder.add(snap, gap)
        if done is not None:
            yield done
    last = builder.finish()
    if last is not None:
        yield last
