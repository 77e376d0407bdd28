"""Analysis over a series of snapshots: coverage, gaps, mid moves, spreads, imbalance.

Pure and streaming: feed snapshots (or their stored JSON objects) oldest first to a
:class:`SeriesSummary`, then read :meth:`SeriesSummary.result`. Nothing is kept per snapshot
except the spread samples needed for the median and the 95th percentile (bounded by the
history cap, 10,000 per pair by default).

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


@dataclass
class SeriesSummary:
    """Accumulates a pair's snapshots (oldest first) into one summary."""

    pair: str | None = None
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
    _sum_r: float = 0.0
    _sum_r2: float = 0.0
    _spreads_bps: list[float] = field(default_factory=list)
    _sum_spread: float = 0.0
    _n_spread: int = 0
    _sum_imbalance: float = 0.0
    _n_imbalance: int = 0
    _prev_ts: int | None = None

    def add(self, snap: Snapshot) -> None:
        self.add_dict(snap.to_dict())

    def add_dict(self, d: dict[str, Any]) -> None:
        """Add one snapshot as :meth:`Snapshot.to_dict` (or the stored JSON) has it."""
        ts = int(d["ts"])
        if self._prev_ts is not None and ts <= self._prev_ts:
            return  # out of order or repeated: a series is read oldest first, once each
        if self.pair is None:
            self.pair = str(d["pair"])
        self.count += 1
        if self.first_ts is None:
            self.first_ts = ts
        if self._prev_ts is not None:
            step = ts - self._prev_ts
            self.step_ms = step if self.step_ms is None else min(self.step_ms, step)
            if d.get("gap_before"):
                self.gaps += 1
        self.last_ts = self._prev_ts = ts

        mid_text = d.get("mid")
        if mid_text is not None:
            mid = Decimal(mid_text)
            if self._first_mid is None:
                self._first_mid = mid_text
            self._last_mid = mid_text
            if self._low is None or mid < self._low[0]:
                self._low = (mid, mid_text)
            if self._high is None or mid > self._high[0]:
                self._high = (mid, mid_text)
            m = float(mid)
            if self._prev_mid is not None and self._prev_mid > 0 and m > 0:
                # a return across a gap is not one step's return: skip it
                if not d.get("gap_before"):
                    r = math.log(m / self._prev_mid)
                    self._log_returns += 1
                    self._sum_r += r
                    self._sum_r2 += r * r
            self._prev_mid = m
        bps = d.get("spread_bps")
        if bps is not None:
            self._spreads_bps.append(float(bps))
        spread = d.get("spread")
        if spread is not None:
            self._sum_spread += float(spread)
            self._n_spread += 1
        imb = d.get("imbalance")
        if imb is not None:
            self._sum_imbalance += float(imb)
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
            "mean": None if not self._n_spread else round(self._sum_spread / self._n_spread, 10),
            "mean_bps": None if not s else round(sum(s) / len(s), 4),
            "median_bps": None if not s else round(_percentile(s, 50), 4),
            "p95_bps": None if not s else round(_percentile(s, 95), 4),
            "max_bps": None if not s else round(s[-1], 4),
        }
        out["imbalance_mean"] = (
            None if not self._n_imbalance else round(self._sum_imbalance / self._n_imbalance, 6)
        )
        return out

    def _volatility_bps(self) -> float | None:
        """Standard deviation of the per-step log return of the mid, in basis points."""
        n = self._log_returns
        if n < 2:
            return None
        mean = self._sum_r / n
        var = max(0.0, (self._sum_r2 - n * mean * mean) / (n - 1))
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
