"""The wide layout: one row per snapshot, one column per number.

``time, pair, seq, gap_before, checksum, exchange_ts``, the metrics (``best_bid, best_ask,
spread, spread_bps, mid, microprice, imbalance``), then ``bid_price_1, bid_qty_1, …,
bid_price_N, bid_qty_N, ask_price_1, ask_qty_1, …, ask_price_N, ask_qty_N``: the shape
pandas, DuckDB and spreadsheets read without parsing a cell. A side with fewer than ``N``
levels leaves the rest empty. It is the layout of CSV exports (by default) and of the Parquet
archive, whose files hold the same columns as typed values (see
:mod:`krakenstream.store.archive`).

Every number is written as exact fixed-point text at its scale (:func:`~.snapshot.metric_scales`
for the metrics, the pair's precisions for levels): never a float.
"""

from __future__ import annotations

from typing import Any

from .events import Level
from .numbers import format_scaled
from .snapshot import METRIC_COLUMNS, Snapshot

#: the columns before the metrics
HEAD_COLUMNS = ("time", "pair", "seq", "gap_before", "checksum", "exchange_ts")


def level_columns(depth: int) -> list[str]:
    """``bid_price_1, bid_qty_1, …, ask_price_depth, ask_qty_depth``."""
    return [
        f"{side}_{what}_{i}"
        for side in ("bid", "ask")
        for i in range(1, depth + 1)
        for what in ("price", "qty")
    ]


def wide_columns(depth: int) -> list[str]:
    """Every column of the wide layout with ``depth`` levels a side, in order."""
    return [*HEAD_COLUMNS, *METRIC_COLUMNS, *level_columns(depth)]


def _side(levels: Any, depth: int, pp: int | None, qp: int | None) -> list[str]:
    out: list[str] = []
    for price, qty in list(levels)[:depth]:
        if pp is None or qp is None:  # already text (a stored record)
            out += (str(price), str(qty))
        else:
            out += (format_scaled(price, pp), format_scaled(qty, qp))
    out += [""] * (2 * depth - len(out))
    return out


def wide_row(snap: Snapshot, depth: int, *, gap_before: bool | None = None) -> list[str]:
    """The snapshot as a wide CSV row with ``depth`` levels a side (deeper levels are cut).

    ``gap_before`` overrides the snapshot's own flag with the mark a reader derived
    (:func:`~.gaps.mark_gaps`)."""
    gap = snap.gap_before if gap_before is None else gap_before
    pp, qp = snap.price_precision, snap.qty_precision
    bids: tuple[Level, ...] = snap.bids
    asks: tuple[Level, ...] = snap.asks
    return [
        snap.time, snap.pair, str(snap.seq), "1" if gap else "0", str(snap.checksum),
        snap.exchange_ts or "",
        *(v or "" for v in snap.metrics_text()),
        *_side(bids, depth, pp, qp),
        *_side(asks, depth, pp, qp),
    ]


def wide_row_from_dict(d: dict[str, Any], depth: int) -> list[str]:
    """:func:`wide_row` of a stored snapshot's JSON object (as ``Snapshot.to_dict`` wrote it),
    from its text as stored: already exact, nothing to parse and re-format."""

    def opt(key: str) -> str:
        v = d.get(key)
        return "" if v is None else str(v)

    return [
        d["time"], d["pair"], str(d["seq"]), "1" if d.get("gap_before") else "0",
        str(d["checksum"]), opt("exchange_ts"),
        *(opt(k) for k in METRIC_COLUMNS),
        *_side(d["bids"], depth, None, None),
        *_side(d["asks"], depth, None, None),
    ]
