"""Series analysis: coverage and gaps, mid moves, spread percentiles, imbalance."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krakenstream.core.analysis import SeriesSummary, _percentile, summarize
from krakenstream.core.snapshot import Snapshot


def snap(ts: int, bid: int, ask: int, gap: bool = False, bq: int = 100, aq: int = 100,
         seq: int = 1) -> Snapshot:
    # price precision 2, qty precision 2
    return Snapshot("T/USD", ts, None, seq, 2, 2, ((bid, bq),), ((ask, aq),), 0, gap)


def test_empty() -> None:
    r = SeriesSummary().result()
    assert r["snapshots"] == 0 and r["mid"]["first"] is None and r["coverage"] is None


def test_coverage_gaps_mid_and_spread() -> None:
    snaps = [snap(1000, 10000, 10002, gap=True), snap(2000, 10010, 10012),
             snap(3000, 10020, 10022),
             # two ticks missing, said so
             snap(6000, 9990, 9994, gap=True), snap(7000, 10000, 10002)]
    r = summarize(list(reversed(snaps)))  # any order in, sorted inside
    assert r["snapshots"] == 5 and r["interval_ms"] == 1000
    assert r["expected"] == 7 and r["coverage"] == round(5 / 7, 6)
    assert r["gaps"] == 1  # the first snapshot's own gap_before is not a gap in this window
    assert r["from"] == "1970-01-01T00:00:01.000Z" and r["to"] == "1970-01-01T00:00:07.000Z"
    assert r["mid"] == {"first": "100.010", "last": "100.010", "low": "99.920",
                        "high": "100.210", "change_bps": 0.0,
                        "volatility_bps": r["mid"]["volatility_bps"]}
    # returns across the gap are skipped: 1→2, 2→3, 6→7
    mids = [100.01, 100.11, 100.21, 99.92, 100.01]
    rets = [math.log(mids[1] / mids[0]), math.log(mids[2] / mids[1]),
            math.log(mids[4] / mids[3])]
    assert abs(r["mid"]["volatility_bps"] - statistics.stdev(rets) * 1e4) < 1e-3
    assert r["spread"]["max_bps"] == round(0.04 / 99.92 * 1e4, 4)
    assert r["imbalance_mean"] == 0.0


def test_repeats_and_out_of_order_are_ignored() -> None:
    acc = SeriesSummary()
    for s in (snap(1000, 1, 3), snap(2000, 1, 3), snap(2000, 1, 3), snap(1500, 1, 3)):
        acc.add(s)
    assert acc.result()["snapshots"] == 2


@given(st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=50),
       st.sampled_from([50, 95, 0, 100]))
def test_percentile_matches_statistics(values: list[float], q: int) -> None:
    s = sorted(values)
    got = _percentile(s, q)
    if len(s) > 1 and q not in (0, 100):
        want = statistics.quantiles(s, n=100, method="inclusive")[q - 1]
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    assert s[0] <= got <= s[-1]


@given(st.lists(st.tuples(st.integers(1, 3), st.integers(0, 50), st.integers(1, 5),
                          st.booleans(), st.booleans()), min_size=0, max_size=40))
@pytest.mark.slow
def test_newest_first_gives_the_same_summary(steps: list[tuple[int, int, int, bool, bool]]
                                            ) -> None:
    """The gateway reads the newest N newest first (one chunk at a time, nothing kept but the
    spread samples): the summary must be the one oldest first gives, gaps, returns across
    them and mid-less books included."""
    snaps, ts = [], 0
    for step, bid, width, gap, empty in steps:
        ts += step * 1000
        bids = () if empty else ((10_000 + bid, 100),)
        snaps.append(Snapshot("T/USD", ts, None, 1, 2, 2, bids, ((10_000 + bid + width, 90),),
                              0, gap))
    oldest_first, newest_first = SeriesSummary(), SeriesSummary(newest_first=True)
    for s in snaps:
        oldest_first.add(s)
    for s in reversed(snaps):
        newest_first.add(s)
    assert oldest_first.result() == newest_first.result()  # exactly: sums are exact
