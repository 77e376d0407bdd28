"""The live view's state and frames (pure): events in with the time passed in, text out."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console, RenderableType

from krakenstream.cli.live import StreamState, format_frame
from krakenstream.client import Connected, Reconnecting, SnapshotEvent, StatusEvent
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
