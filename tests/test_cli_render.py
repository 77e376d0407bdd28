"""What the commands show (pure renderers): tables, the ladder, ages, states."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, RenderableType

from krakenstream.cli.render import (
    format_age,
    format_bars,
    format_history_table,
    format_ladder,
    format_latest,
    format_pairs,
    format_replay,
    format_size,
    format_summary,
    ladder_rows,
)
from krakenstream.core.replay import PairStats, ReplayResult
from krakenstream.core.snapshot import Snapshot

NOW_MS = 1_764_090_000_000  # 2025-11-25T17:00:00Z


def snap(seq: int = 1, *, ts: int = NOW_MS, bid: int = 300_000, pair: str = "ETH/USD",
         gap: bool = False) -> dict[str, Any]:
    return Snapshot(
        pair=pair, ts=ts, exchange_ts="2025-11-25T16:59:59.900000Z", seq=seq,
        price_precision=2, qty_precision=8,
        bids=((bid, 150_000_000), (bid - 1, 25_000_000), (bid - 5, 100)),
        asks=((bid + 1, 200_000_000), (bid + 3, 1)),
        checksum=123456, gap_before=gap,
    ).to_dict()


def text_of(renderable: RenderableType, width: int = 160) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_history_table_shows_each_snapshot() -> None:
    rows = [snap(2, ts=NOW_MS + 1000, gap=True), snap(1)]
    text = text_of(format_history_table(rows, title="ETH/USD: 2 snapshots, newest first"))
    assert "ETH/USD: 2 snapshots, newest first" in text
    assert "2025-11-25T17:00:01.000Z" in text and "2025-11-25T17:00:00.000Z" in text
    line2 = next(line for line in text.splitlines() if "17:00:01.000Z" in line).split()
    line1 = next(line for line in text.splitlines() if "17:00:00.000Z" in line).split()
    assert line2 == ["2025-11-25T17:00:01.000Z", "2", "3000.00", "3000.01", "0.01", "0.0333",
                     "3000.005", "-0.066666", "yes"]  # yes: the gap marker
    assert line1[1:] == ["1", "3000.00", "3000.01", "0.01", "0.0333", "3000.005", "-0.066666"]


def test_history_table_tolerates_missing_metrics() -> None:
    row = snap()
    row["best_ask"] = None
    row.pop("imbalance")
    assert "—" in text_of(format_history_table([row], title="t"))


def test_latest_shows_metrics_and_ladder() -> None:
    text = text_of(format_latest(snap(7)))
    for expected in ("ETH/USD", "2025-11-25T17:00:00.000Z", "3000.00 / 3000.01",
                     "0.01 (0.0333 bps)", "3000.005", "123456"):
        assert expected in text, expected
    assert "1.50000000" in text  # size at the best bid in the ladder


def test_pairs_table() -> None:
    now = 1_000_000.0
    entries = [
        {"pair": "ETH/USD", "state": "live", "frames": 1200, "mismatches": 0, "crossed": 0,
         "resyncs": 1, "reconnects": 0, "last_frame_time": now - 0.4, "since": now - 125,
         "error": None, "snapshots": 9999},
        {"pair": "BAD/USD", "state": "error", "frames": 0, "mismatches": 0, "crossed": 0,
         "resyncs": 0, "reconnects": 0, "last_frame_time": None, "since": now - 3,
         "error": "Currency pair not supported", "snapshots": 0},
    ]
    text = text_of(format_pairs(entries, now=now))
    lines = text.splitlines()
    bad = next(line for line in lines if "BAD/USD" in line)
    eth = next(line for line in lines if "ETH/USD" in line)
    assert lines.index(bad) < lines.index(eth)  # sorted by pair
    assert "error" in bad and "Currency pair not supported" in bad and "3s ago" in bad
    assert "live" in eth and "9999" in eth and "2m ago" in eth and "1200" in eth


def test_pairs_table_shows_the_archive_when_the_daemon_has_one() -> None:
    entry = {"pair": "ETH/USD", "state": "live", "snapshots": 10, "archive_bytes": 22_900_000,
             "archive_days": 3, "archive_bytes_per_day": 7_633_333}
    text = text_of(format_pairs([entry, {"pair": "SOL/USD", "archive_days": 0}], now=0))
    assert "archive" in text and "22.9 MB, 3 d (7.6 MB/d)" in text
    assert "archive" not in text_of(format_pairs([{"pair": "ETH/USD"}], now=0))


@pytest.mark.parametrize(("n", "shown"), [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"),
                                          (7_633_333, "7.6 MB"), (4 * 10**12, "4.0 TB"),
                                          (5 * 10**16, "50000.0 TB"), (None, "-")])
def test_format_size(n: object, shown: str) -> None:
    assert format_size(n) == shown


def test_pairs_table_shows_a_daemons_text_as_text() -> None:
    entry = {"pair": "ETH/USD", "state": "error", "error": "closed [/] by [bold]peer"}
    console = Console(width=200, record=True)
    console.print(format_pairs([entry], now=NOW_MS / 1000))
    assert "closed [/] by [bold]peer" in console.export_text()
    console.print(format_pairs([{"pair": "X/Y", "state": 5, "frames": "x"}], now=0))
    assert "X/Y" in console.export_text()


@pytest.mark.parametrize(
    ("age", "shown"), [(0.2, "0s ago"), (59, "59s ago"), (125, "2m ago"), (7200, "2.0h ago"),
                       (3 * 86400, "3.0d ago"), (-5, "0s ago")]
)
def test_format_age(age: float, shown: str) -> None:
    assert format_age(100_000.0 - age, 100_000.0) == shown
    assert format_age(None, 1.0) == "—"


def test_ladder_cumulates_exactly() -> None:
    rows = ladder_rows(snap(), depth=10)
    assert rows[0] == ("1.50000000", "1.50000000", "3000.00", "3000.01", "2.00000000",
                       "2.00000000")
    assert rows[1] == ("1.75000000", "0.25000000", "2999.99", "3000.03", "0.00000001",
                       "2.00000001")
    # the ask side is shorter: blanks on its side, the bid side goes on
    assert rows[2] == ("1.75000100", "0.00000100", "2999.95", "", "", "")
    assert len(ladder_rows(snap(), depth=1)) == 1
    assert sum(Decimal(r[1]) for r in rows) == Decimal(rows[-1][0])


# -- no number is ever cut, whatever the width (issue 17 item 1) ------------------------------

WIDTHS = (80, 60, 40)


def big(seq: int) -> dict[str, Any]:
    """A BTC/USD snapshot with wide values: five-digit prices, six-digit sequence numbers."""
    return Snapshot(
        pair="BTC/USD", ts=NOW_MS + seq * 1000, exchange_ts="2025-11-25T16:59:59.900000Z",
        seq=123_000 + seq, price_precision=1, qty_precision=8,
        bids=((949_121, 150_000_000), (949_120, 2_512_345_678)),
        asks=((949_122, 200_000_000), (949_125, 1)),
        checksum=3_326_172_893, gap_before=seq == 1,
    ).to_dict()


def whole(text: str, values: list[str], columns: list[str]) -> None:
    """No ``…`` anywhere; each value shown whole, or its column named as not shown."""
    assert "…" not in text, text
    flat = " ".join(text.split())  # a caption may wrap
    caption = re.search(r"not shown at this width: ([^(]*)|([a-z, ]+): not shown at this width",
                        flat)
    hidden = (caption[1] or caption[2]) if caption else ""
    for value, column in zip(values, columns, strict=True):
        if value:
            assert value in text or column in hidden, (value, column, text)


@pytest.mark.parametrize("width", WIDTHS)
def test_history_table_never_cuts_a_number(width: int) -> None:
    rows = [big(1), big(2)]
    text = text_of(format_history_table(rows, title="BTC/USD: 2 snapshots"), width)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    keys = ["time", "seq", "best_bid", "best_ask", "spread", "spread_bps", "mid", "imbalance"]
    for row in rows:
        whole(text, [str(row[k]) for k in keys],
              ["time (UTC)", "seq", "best bid", "best ask", "spread", "bps", "mid", "imbalance"])
        for essential in ("time", "best_bid", "best_ask"):
            assert str(row[essential]) in text
    if width == 80:  # a table, the least needed columns left out and named
        assert "2025-11-25T17:00:01.000Z   94912.1   94912.2" in text
        assert "not shown at this width" in text and "--json" in text


def test_history_table_turns_vertical_when_even_the_touch_does_not_fit() -> None:
    text = text_of(format_history_table([big(1)], title="BTC/USD"), 40)
    assert "…" not in text
    lines = [line.split() for line in text.splitlines()]
    assert ["best", "bid", "94912.1"] in lines and ["seq", "123001"] in lines
    assert ["imbalance", str(big(1)["imbalance"])] in lines
    # narrower still: each header above its value
    lines = [line.strip() for line in text_of(format_history_table([big(1)], title="BTC/USD"),
                                               24).splitlines()]
    assert lines[lines.index("time (UTC)") + 1] == "2025-11-25T17:00:01.000Z"
    assert lines[lines.index("best bid") + 1] == "94912.1"


@pytest.mark.parametrize("width", WIDTHS)
def test_pairs_table_never_cuts_a_number(width: int) -> None:
    now = 1_000_000.0
    entry = {"pair": "BTC/USD", "state": "live", "frames": 58_123_456, "mismatches": 12,
             "crossed": 0, "resyncs": 123, "reconnects": 45, "last_frame_time": now - 1,
             "since": now - 7200, "error": "Currency pair not supported ABC/USD",
             "snapshots": 10_000}
    text = text_of(format_pairs([entry], now=now), width)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    keys = ["frames", "mismatches", "resyncs", "reconnects", "snapshots"]
    whole(text, [str(entry[k]) for k in keys], keys)
    assert "BTC/USD" in text and "live" in text
    assert "Currency pair not supported ABC/USD" in " ".join(text.split())  # wrapped, whole


@pytest.mark.parametrize("width", WIDTHS)
def test_replay_table_never_cuts_a_number(width: int) -> None:
    result = ReplayResult(lines=123_456)
    result.pairs["BTC/USD"] = PairStats(frames=98_765, verified=98_700, mismatches=3,
                                        crossed=1, best_bid="94912.1", best_ask="94912.2",
                                        bid_levels=1000, ask_levels=1000)
    text = text_of(format_replay(Path("btc.jsonl"), result), width)
    assert "btc.jsonl: 123456 frames" in " ".join(text.split())
    whole(text, ["98765", "98700", "3", "1", "94912.1", "94912.2", "1000/1000"],
          ["frames", "verified", "bad crc", "crossed", "best bid", "best ask", "levels"])
    assert "3" in text.split("BTC/USD", 1)[1]  # the checksum failures always shown


@pytest.mark.parametrize("width", WIDTHS)
def test_latest_and_ladder_never_cut_a_number(width: int) -> None:
    snapshot = big(1)
    text = text_of(format_latest(snapshot), width)
    assert "…" not in text
    for key in ("best_bid", "best_ask", "mid", "microprice", "imbalance", "checksum"):
        assert str(snapshot[key]) in text.replace("\n", ""), key
    ladder = text_of(format_ladder(snapshot, 10), width)
    whole(ladder, ["94912.1", "25.12345678", "26.62345678", "94912.2", "0.00000001"],
          ["bid", "size", "cum", "ask", "size"])
    assert "94912.1" in ladder and "94912.2" in ladder  # the prices stay


@pytest.mark.parametrize("width", WIDTHS)
def test_summary_never_cuts_a_number(width: int) -> None:
    summary = {"pair": "BTC/USD", "from": "2025-11-25T17:00:00.000Z",
               "to": "2025-11-25T19:46:39.000Z", "snapshots": 10_000, "expected": 10_000,
               "coverage": 1.0, "interval_ms": 1000, "gaps": 0,
               "mid": {"first": "94912.15", "last": "95123.45", "low": "94800.05",
                       "high": "95200.95", "change_bps": "22.262618",
                       "volatility_bps": "0.512345"},
               "spread": {"mean": "0.1234", "mean_bps": "0.0130", "median_bps": "0.0105",
                          "p95_bps": "0.0527", "max_bps": "1.2345"},
               "imbalance_mean": "-0.066667"}
    text = text_of(format_summary(summary), width)
    assert "…" not in text
    flat = text.replace("\n", " ")
    for value in ("94912.15", "95123.45", "95200.95", "22.262618", "0.512345", "1.2345",
                  "-0.066667", "10000 of 10000"):
        assert value in " ".join(flat.split()) or value in text.replace("\n", ""), value


def test_bars_table_never_cuts_a_price() -> None:
    bar = {"time": "2025-11-25T17:00:00.000Z", "open": "94912.15", "high": "94999.95",
           "low": "94900.05", "close": "94950.55", "spread_mean": "0.1000", "gap": True,
           "spread_bps_mean": "0.0105", "imbalance_mean": "-0.123456", "snapshots": 60}
    answer = {"pair": "BTC/USD", "every": "1m", "bars": [bar]}
    wide = text_of(format_bars(answer))
    assert "BTC/USD: 1 bar of 1m, oldest first" in wide and "94912.15" in wide and "yes" in wide
    narrow = text_of(format_bars(answer), width=50)
    assert "94950.55" in narrow and "…" not in narrow
