"""Pure parts of the client commands: time options, tables, the ladder, the live view's state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from rich.console import Console, RenderableType

from krakenstream.client import Connected, Reconnecting, SnapshotEvent, StatusEvent
from krakenstream.commands.history import (
    count_rows,
    format_history_table,
    format_latest,
    parse_when,
)
from krakenstream.commands.pairs import format_age, format_pairs
from krakenstream.commands.stream import (
    StreamState,
    format_frame,
    ladder_rows,
    run_stream,
)
from krakenstream.core.snapshot import Snapshot
from krakenstream.errors import InputError

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


# -- time options -------------------------------------------------------------------------


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


# -- tables -------------------------------------------------------------------------------


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


def test_count_rows() -> None:
    assert count_rows(b"a,b\r\n1,2\r\n3,") == 2
    assert count_rows(b"") == 0


# -- the live view ------------------------------------------------------------------------


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


def test_state_follows_events() -> None:
    state = StreamState.for_pairs(["eth-usd", "BTC/USD"])
    assert list(state.views) == ["ETH/USD", "BTC/USD"]
    assert not state.ready()
    state.apply(Connected("eth-usd"), 0.0)
    state.apply(SnapshotEvent("ETH/USD", snap(1)), 1.0)
    eth = state.views["ETH/USD"]
    assert eth.last_change == "2025-11-25T17:00:00.000Z"
    # the same book a second later: not a change
    state.apply(SnapshotEvent("ETH/USD", snap(2, ts=NOW_MS + 1000)), 2.0)
    assert eth.last_change == "2025-11-25T17:00:00.000Z" and eth.snapshot is not None
    assert eth.snapshot["seq"] == 2
    # a moved book is
    state.apply(SnapshotEvent("ETH/USD", snap(3, ts=NOW_MS + 2000, bid=300_100)), 3.0)
    assert eth.last_change == "2025-11-25T17:00:02.000Z"
    assert eth.rate(3.0) == pytest.approx(1.0)
    assert eth.rate(3.0 + 60) == 0.0  # nothing for a minute
    state.apply(SnapshotEvent("BTC/USD", snap(1, pair="BTC/USD")), 3.0)
    assert state.ready()
    state.apply(StatusEvent("ETH/USD", "resyncing", "checksum mismatch"), 4.0)
    assert (eth.feed_state, eth.feed_reason) == ("resyncing", "checksum mismatch")
    state.apply(Reconnecting("eth-usd", "connection refused", 1.5, 1), 5.0)
    assert (eth.connection, eth.connection_reason, eth.retry_in) == (
        "reconnecting", "connection refused", 1.5)
    state.apply(Connected("ETH/USD"), 6.0)
    assert eth.connection == "connected" and eth.connection_reason is None


def test_feed_states_from_the_pair_list() -> None:
    state = StreamState.for_pairs(["ETH/USD", "BTC/USD"])
    state.apply_pairs([{"pair": "ETH/USD", "state": "error", "error": "refused"}])
    assert (state.views["ETH/USD"].feed_state, state.views["ETH/USD"].feed_reason) == (
        "error", "refused")
    assert state.views["BTC/USD"].feed_state == "untracked"


def test_frame_is_a_function_of_state() -> None:
    state = StreamState.for_pairs(["ETH/USD", "BTC/USD"])
    wall = NOW_MS / 1000 + 3
    text = text_of(format_frame(state, depth=5, now=10.0, wall=wall))
    assert text.count("waiting for the first snapshot") == 2
    state.apply(SnapshotEvent("ETH/USD", snap(1)), 9.0)
    state.apply(SnapshotEvent("ETH/USD", snap(2, ts=NOW_MS + 1000)), 10.0)
    state.apply(StatusEvent("ETH/USD", "live"), 10.0)
    text = text_of(format_frame(state, depth=5, now=10.0, wall=wall))
    assert text.count("waiting for the first snapshot") == 1
    for expected in ("ETH/USD", "live", "mid 3000.005", "spread 0.01 (0.0333 bps)", "seq 2",
                     "last change 2025-11-25T17:00:00.000Z (3s ago)", "rate 1.0/s",
                     "3000.00", "3000.03", "1.75000000", "2.00000001"):
        assert expected in text, expected
    assert text == text_of(format_frame(state, depth=5, now=10.0, wall=wall))
    # depth cuts the ladder
    assert "2999.95" in text and "2999.95" not in text_of(
        format_frame(state, depth=2, now=10.0, wall=wall))
    state.apply(Reconnecting("ETH/USD", "connection refused", 0.8, 2), 11.0)
    text = text_of(format_frame(state, depth=5, now=11.0, wall=wall))
    assert "reconnecting… (connection refused, next try in 0.8s)" in text
    assert "3000.00" in text  # the last book stays on screen meanwhile


async def test_a_pair_given_twice_is_streamed_once() -> None:
    asked: list[list[str]] = []

    class Daemon:  # the two calls run_stream makes, answered as a daemon would
        base_url = "http://127.0.0.1:1"

        def pairs(self) -> list[dict[str, Any]]:
            return [{"pair": "ETH/USD", "state": "live"}]

        async def stream(self, pairs: list[str]) -> AsyncIterator[Any]:
            asked.append(list(pairs))
            yield SnapshotEvent("ETH/USD", snap())

    console = Console(width=200, record=True)
    state = await run_stream(Daemon(), ["ETH/USD", "eth-usd", " ETH/USD "],  # type: ignore[arg-type]
                             once=True, console=console)
    assert asked == [["ETH/USD"]] and list(state.views) == ["ETH/USD"]
