"""What the commands show (pure renderers): tables, the ladder, ages, states."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from rich.console import Console, RenderableType

from krakenstream.cli.render import (
    format_age,
    format_history_table,
    format_latest,
    format_pairs,
    ladder_rows,
)
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
