"""The wide layout (core/wide.py)."""

from __future__ import annotations

from krakenstream.core.snapshot import Snapshot
from krakenstream.core.wide import level_columns, wide_columns, wide_row, wide_row_from_dict

SNAP = Snapshot(
    pair="BTC/USD", ts=1_700_000_000_000, exchange_ts="2023-11-14T22:13:19.500000Z", seq=7,
    price_precision=1, qty_precision=8, bids=((300000, 150000000), (299995, 1)),
    asks=((300010, 2500000000),), checksum=12345, origin="ob1",
)


def test_columns_in_the_documented_order() -> None:
    cols = wide_columns(2)
    assert cols[:6] == ["time", "pair", "seq", "gap_before", "checksum", "exchange_ts"]
    assert cols[6:13] == ["best_bid", "best_ask", "spread", "spread_bps", "mid", "microprice",
                          "imbalance"]
    assert cols[13:] == level_columns(2) == [
        "bid_price_1", "bid_qty_1", "bid_price_2", "bid_qty_2",
        "ask_price_1", "ask_qty_1", "ask_price_2", "ask_qty_2",
    ]


def test_a_row_is_exact_text_and_missing_levels_are_empty() -> None:
    row = wide_row(SNAP, 2)
    assert len(row) == len(wide_columns(2))
    d = dict(zip(wide_columns(2), row, strict=True))
    assert d["time"] == "2023-11-14T22:13:20.000Z"
    assert d["seq"] == "7" and d["gap_before"] == "0" and d["checksum"] == "12345"
    assert d["best_bid"] == "30000.0" and d["mid"] == "30000.50"
    assert d["bid_price_2"] == "29999.5" and d["bid_qty_2"] == "0.00000001"
    assert d["ask_price_1"] == "30001.0" and d["ask_qty_1"] == "25.00000000"
    assert d["ask_price_2"] == "" and d["ask_qty_2"] == ""


def test_depth_cuts_deeper_levels_and_a_derived_mark_overrides_the_flag() -> None:
    row = wide_row(SNAP, 1, gap_before=True)
    assert len(row) == len(wide_columns(1))
    assert row[3] == "1"


def test_from_the_stored_record_equals_from_the_snapshot() -> None:
    for depth in (1, 2, 10):
        assert wide_row_from_dict(SNAP.to_dict(), depth) == wide_row(SNAP, depth)


def test_origin_is_in_the_json_only_when_set() -> None:
    assert SNAP.to_dict()["origin"] == "ob1"
    assert Snapshot.from_dict(SNAP.to_dict()) == SNAP
    plain = Snapshot.from_dict({k: v for k, v in SNAP.to_dict().items() if k != "origin"})
    assert plain.origin == "" and "origin" not in plain.to_dict()
