"""Analysis over a series of snapshots: coverage, gaps, mid moves, spreads, imbalance.

Pure and streaming: feed snapshots (or their stored JSON objects) oldest first to a
:class:`SeriesSummary` (or newest first to one made with ``newest_first=True``: the gateway
reads the newest N of a window that way, one chunk at a time), then read
:meth:`SeriesSummary.result`. Nothing is kept per snapshot except the spread samples needed
for the median and the 95th percentile (floats, bounded by the history cap, 10,000 per pair
by default).

Prices stay exact where they are reported as prices (first, last, low and high mid are the
snapshots' own decimal text); statistics over many snapshots (means, percentiles, realised
volatility) are computed in floating point and rounded, as such figures are estimates anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .snapshot import Snapshot
from .times import iso_ms


class ExactSum:
    """A running float sum that does not depend on the order of its terms: Shewchuk's
    partials (what :func:`math.fsum` keeps), so a series read newest first sums exactly as
    oldest first (a plain ``+=`` differs in the last bits, and a rounded mean then in its
    last digit)."""

    __slots__ = ("_partials",)

    def __init__(self) -> None:
        self._partials: list[float] = []

    def add(self, x: float) -> None:
        partials, i = self._partials, 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]

    @property
    def value(self) -> float:
        return math.fsum(self._partials)


@dataclass
class SeriesSummary:
    """Accumulates a pair's snapshots, oldest first (or newest first with ``newest_first``),
    into one summary; the result is the same either way."""

    pair: str | None = None
    newest_first: bool = False
    count: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    #: snapshots that said snapshots were missing just before them
    gaps: int = 0
    #: the smallest step seen between consecutive snapshots: the publish interval
    step_ms: int | None = None
    _first_mid: str | None = None
    _last_mid: str | None = None
    _low: tuple[Decimal, str] | None = None
    _high: tuple[Decimal, str] | None = None
    _prev_mid: float | None = None
    _log_returns: int = 0
    _sum_r: ExactSum = field(default_factory=ExactSum)
    _sum_r2: ExactSum = field(default_factory=ExactSum)
    _spreads_bps: list[float] = field(default_factory=list)
    _sum_spread: ExactSum = field(default_factory=ExactSum)
    _n_spread: int = 0
    _sum_imbalance: ExactSum = field(default_factory=ExactSum)
    _n_imbalance: int = 0
    _prev_ts: int | None = None
    #: the previous snapshot's own gap mark (newest first, it marks the step to this one),
    #: and that of the snapshot whose mid is ``_prev_mid`` (it marks the return to this mid)
    _prev_gap: bool = False
    _prev_mid_gap: bool = False

    def add(self, snap: Snapshot) -> None:
        self.add_dict(snap.to_dict())

    def add_dict(self, d: dict[str, Any]) -> None:
        """Add one snapshot as :meth:`Snapshot.to_dict` (or the stored JSON) has it."""
        ts = int(d["ts"])
        newest_first, prev_ts = self.newest_first, self._prev_ts
        if prev_ts is not None and (ts >= prev_ts if newest_first else ts <= prev_ts):
            return  # out of order or repeated: a series is read in one order, once each
        if self.pair is None:
            self.pair = str(d["pair"])
        self.count += 1
        gap_here = bool(d.get("gap_before"))
        # the step between this snapshot and the previous one is marked on the later one
        gap_step = self._prev_gap if newest_first else gap_here
        if prev_ts is not None:
            step = abs(ts - prev_ts)
            self.step_ms = step if self.step_ms is None else min(self.step_ms, step)
            if gap_step:
                self.gaps += 1
        if newest_first:
            self.first_ts = ts
            if self.last_ts is None:
                self.last_ts = ts
        else:
            if self.first_ts is None:
                self.first_ts = ts
            self.last_ts = ts
        self._prev_ts, self._prev_gap = ts, gap_here

        mid_text = d.get("mid")
        if mid_text is not None:
            mid = Decimal(mid_text)
            if newest_first:
                self._first_mid = mid_text
                if self._last_mid is None:
                    self._last_mid = mid_text
            else:
                if self._first_mid is None:
                    self._first_mid = mid_text
                self._last_mid = mid_text
            if self._low is None or mid < self._low[0]:
                self._low = (mid, mid_text)
            if self._high is None or mid > self._high[0]:
                self._high = (mid, mid_text)
            m = float(mid)
            prev_mid = self._prev_mid
            # a return across a gap is not one step's return: skip it (the later of the two
            # mids says whether a gap came before it)
            gap_return = self._prev_mid_gap if newest_first else gap_here
            if prev_mid is not None and prev_mid > 0 and m > 0 and not gap_return:
                r = math.log(prev_mid / m if newest_first else m / prev_mid)
                self._log_returns += 1
                self._sum_r.add(r)
                self._sum_r2.add(r * r)
            self._prev_mid, self._prev_mid_gap = m, gap_here
        bps = d.get("spread_bps")
        if bps is not None:
            self._spreads_bps.append(float(bps))
        spread = d.get("spread")
        if spread is not None:
            self._sum_spread.add(float(spread))
            self._n_spread += 1
        imb = d.get("imbalance")
        if imb is not None:
            self._sum_imbalance.add(float(imb))
            self._n_imbalance += 1

    def result(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict (decimal strings for prices, floats rounded)."""
        out: dict[str, Any] = {
            "pair": self.pair,
            "snapshots": self.count,
            "from": None if self.first_ts is None else iso_ms(self.first_ts),
            "to": None if self.last_ts is None else iso_ms(self.last_ts),
            "interval_ms": self.step_ms,
            "gaps": self.gaps,
        }
        expected = None
        if self.step_ms and self.first_ts is not None and self.last_ts is not None:
            expected = (self.last_ts - self.first_ts) // self.step_ms + 1
        out["expected"] = expected
        out["coverage"] = None if not expected else round(self.count / expected, 6)
        change_bps = None
        if self._first_mid is not None and self._last_mid is not None:
            first = Decimal(self._first_mid)
            if first:
                change_bps = round(float((Decimal(self._last_mid) - first) / first) * 1e4, 4)
        out["mid"] = {
            "first": self._first_mid,
            "last": self._last_mid,
            "low": None if self._low is None else self._low[1],
            "high": None if self._high is None else self._high[1],
            "change_bps": change_bps,
            "volatility_bps": self._volatility_bps(),
        }
        s = sorted(self._spreads_bps)
        out["spread"] = {
            "mean": None if not self._n_spread else round(
                self._sum_spread.value / self._n_spread, 10),
            "mean_bps": None if not s else round(math.fsum(s) / len(s), 4),
            "median_bps": None if not s else round(_percentile(s, 50), 4),
            "p95_bps": None if not s else round(_percentile(s, 95), 4),
            "max_bps": None if not s else round(s[-1], 4),
        }
        out["imbalance_mean"] = (
            None if not self._n_imbalance else round(
                self._sum_imbalance.value / self._n_imbalance, 6)
        )
        return out

    def _volatility_bps(self) -> float | None:
        """Standard deviation of the per-step log return of the mid, in basis points."""
        n = self._log_returns
        if n < 2:
            return None
        mean = self._sum_r.value / n
        var = max(0.0, (self._sum_r2.value - n * mean * mean) / (n - 1))
        return round(math.sqrt(var) * 1e4, 4)


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(snapshots: list[Snapshot]) -> dict[str, Any]:
    """A summary of snapshots given in any order (sorted by time here)."""
    acc = SeriesSummary()
    for snap in sorted(snapshots, key=lambda s: s.ts):
        acc.add(snap)
    return acc.result()
