"""``/api/analysis``: what the history store holds of a pair, newest snapshot, history, summary.

``latest`` is the hottest route: its answer comes through the app's
:class:`.hub.LatestCache`. ``history`` streams its body (JSON, NDJSON, CSV in the wide or
the levels layout, or Parquet, see :mod:`.exports`) and answers 404 only for a pair with
nothing stored at all: an empty window of a known pair is an empty list. ``summary`` walks
the window newest first a chunk at a time, accumulating off the event loop: it keeps nothing
per snapshot but its spread. Both span the Parquet archive when the window reaches below the
store's oldest row.

Both are heavy reads, bounded in number (:mod:`.slots`): ``gateway.max_exports`` history
answers and ``gateway.max_summaries`` summaries at once, one more answered 503 with
``Retry-After``.
"""

# no "from __future__ import annotations": FastAPI reads the route signatures at runtime

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ...core.analysis import SeriesSummary
from ...core.pairs import normalize_pair
from ...core.snapshot import Snapshot, csv_line
from ...errors import InputError, NotFound
from ...store.base import HistoryStore, Order
from ...store.span import SpanningHistory
from .deps import Authed, Gateway, Pair, Store, gateway_of
from .errors import documented
from .exports import (
    aclose,
    csv_body,
    file_body,
    json_body,
    ndjson_body,
    wide_csv_body,
    write_parquet_file,
)
from .params import Depth, HistoryLimit, NewestLimit, Since, Until, parse_time
from .responses import MEDIA_TYPES, formats, json_response
from .slots import HeldStreamingResponse, Slot

#: snapshots handed to the summary's worker thread at once, and their levels at most
SUMMARY_BATCH = 256
SUMMARY_BATCH_LEVELS = 100_000
#: the most snapshots a summary reads (31 days of one a second; beyond the store's window
#: they come from the archive)
SUMMARY_MAX_ROWS = 31 * 86_400

router = APIRouter(tags=["analysis"])

_NOTHING_STORED_HINT = "GET /api/pairs lists the tracked pairs"


@router.get("/api/analysis/latest/{pair:path}", responses=documented(401, 404, 422, 503))
async def latest(pair: Pair, claims: Authed, request: Request) -> Response:
    """The newest stored snapshot of the pair (``Snapshot.to_dict()``)."""
    # the hottest route reads its state without the State dependency, which costs ~70
    # Python calls a request, a tenth of the whole (measured with cProfile)
    gw = gateway_of(request)
    name = normalize_pair(pair)
    st = gw.store()
    body = await gw.latest.get(name, lambda: st.latest(name))
    if body is None:
        raise NotFound(f"no snapshot of {name} stored yet", hint=_NOTHING_STORED_HINT)
    return Response(body, media_type="application/json")


@router.get("/api/analysis/history/{pair:path}",
            responses={**documented(401, 404, 422, 503), **formats("ndjson", "csv", "parquet")})
async def history(
    pair: Pair,
    claims: Authed,
    st: Store,
    request: Request,
    since: Since = None,
    until: Until = None,
    limit: HistoryLimit = None,
    order: Literal["desc", "asc"] = "desc",
    format: Literal["json", "csv", "ndjson", "parquet"] = "json",
    layout: Literal["wide", "levels"] = Query(
        "wide", description="CSV only: wide (a column per price and size: bid_price_1, "
        "bid_qty_1, ...) or levels (all levels of a side in one cell, price@qty)"),
    depth: Depth = None,
) -> Response:
    """Stored snapshots, newest first by default, streamed as JSON, NDJSON, CSV or Parquet.
    A window that reaches below the oldest row the store holds is answered from the Parquet
    archive too (the store for the newest rows, the archive for older ones), every row
    marked by the gap rule (``core/gaps.py``); with ``since`` and no ``limit``, every row of
    the window. Wide CSV and Parquet have ``depth`` levels a side (default: the daemon's
    ``kraken.depth``)."""
    name = normalize_pair(pair)
    lo, hi = parse_time("since", since), parse_time("until", until)
    gw = gateway_of(request)
    slot = gw.exports.take()  # held until the body is sent (or fails)
    try:
        if format == "parquet" or (format == "csv" and layout == "wide"):
            levels = depth or gw.settings.kraken.depth
            return await _tables(gw, st, slot, name, lo, hi, limit, order, format, levels)
        return await _history(gw, st, slot, name, lo, hi, limit, order, format)
    except BaseException:
        slot.release()
        raise


async def _history(gw: Gateway, st: HistoryStore, slot: Slot, name: str, lo: int | None,
                   hi: int | None, limit: int | None, order: Order, format: str) -> Response:
    """JSON, NDJSON and the levels CSV: rows as the store renders them."""
    csv = format == "csv"
    spanned = await _spanning_rows(gw, st, name, lo, hi, limit, order, csv)
    rows: AsyncIterator[Any] = spanned if spanned is not None else (
        st.history_csv if csv else st.history_json)(
        name, since=lo, until=hi, limit=limit, order=order)
    first = await _first(rows)
    if first is None:
        await _known(st, name)
    if csv:
        return _attachment(csv_body(first, rows), slot, name, "csv")
    if format == "ndjson":
        return HeldStreamingResponse(ndjson_body(first, rows), slot,
                                     media_type=MEDIA_TYPES["ndjson"])
    return HeldStreamingResponse(json_body(name, order, first, rows), slot,
                                 media_type=MEDIA_TYPES["json"])


async def _tables(gw: Gateway, st: HistoryStore, slot: Slot, name: str, lo: int | None,
                  hi: int | None, limit: int | None, order: Order, format: str,
                  depth: int) -> Response:
    """The wide CSV and Parquet: wide tables, written a column at a time."""
    span = await _span(gw, st, name, lo)
    tables = span.tables(name, since=lo, until=hi, limit=limit, order=order, depth=depth)
    if format == "parquet":
        # the whole answer is written to a temporary file first (a Parquet file is readable
        # only once its footer is written), then sent from it
        file, rows = await write_parquet_file(tables, depth)
        if rows == 0:
            try:
                await _known(st, name)
            except BaseException:
                file.close()
                raise
        return _attachment(file_body(file), slot, name, "parquet")
    first = await _first(tables)
    if first is None:
        await _known(st, name)
    return _attachment(wide_csv_body(first, tables, depth), slot, name, "csv")


async def _first(rows: AsyncIterator[Any]) -> Any:
    """The first item of ``rows`` (None when there is none: ``rows`` is then closed)."""
    try:
        first = await anext(rows)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await aclose(rows)
        raise
    if first is None:
        await aclose(rows)
    return first


async def _known(st: HistoryStore, pair: str) -> None:
    """404 for a pair with nothing stored (an empty window of a known pair is no error)."""
    if await st.count(pair) == 0:
        raise NotFound(f"no snapshot of {pair} stored", hint=_NOTHING_STORED_HINT)


def _attachment(body: AsyncIterator[bytes], slot: Slot, pair: str,
                kind: str) -> HeldStreamingResponse:
    filename = f"{pair.replace('/', '-')}.{kind}"
    return HeldStreamingResponse(body, slot, media_type=MEDIA_TYPES[kind], headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


async def _span(gw: Gateway, st: HistoryStore, pair: str, lo: int | None) -> SpanningHistory:
    """The history a window reads: the store and the archive when the window reaches below
    the store's oldest row and an archive exists, else the store alone."""
    archive = gw.services.archive
    if archive is None or lo is None:
        return SpanningHistory(st, None)
    span = SpanningHistory(st, archive)
    oldest = await span.oldest_in_store(pair)
    if oldest is not None and lo >= oldest:
        return SpanningHistory(st, None)
    return span


async def _spanning_rows(gw: Gateway, st: HistoryStore, pair: str, lo: int | None,
                         hi: int | None, limit: int | None, order: str,
                         csv: bool) -> AsyncIterator[Any] | None:
    """The window's rows from the store and the archive (as snapshot JSON, or CSV lines with
    ``csv``; marked), when the window reaches below the store's oldest row and an archive
    exists; else None."""
    span = await _span(gw, st, pair, lo)
    if span.archive is None:
        return None

    async def encoded() -> AsyncIterator[Any]:
        async for snap in span.history(pair, since=lo, until=hi, limit=limit, order=order):
            yield csv_line(snap.csv_row()) if csv else snap.to_json()

    return encoded()


@router.get("/api/analysis/summary/{pair:path}", responses=documented(401, 404, 422, 503))
async def summary(
    pair: Pair,
    claims: Authed,
    request: Request,
    st: Store,
    since: Since = None,
    until: Until = None,
    limit: NewestLimit = None,
) -> Response:
    """Coverage, gaps, mid change and volatility, spread percentiles and imbalance over
    the stored snapshots in the window (see ``core.analysis.SeriesSummary``); a window that
    reaches below the store's oldest row is read from the Parquet archive too (at most
    :data:`SUMMARY_MAX_ROWS` snapshots)."""
    name = normalize_pair(pair)
    lo, hi = parse_time("since", since), parse_time("until", until)
    gw = gateway_of(request)
    slot = gw.summaries.take()
    try:
        span = await _span(gw, st, name, lo)
        acc = await summarize(span, name, lo, hi, limit)
    finally:
        slot.release()
    if not acc.count and await st.count(name) == 0:
        raise NotFound(f"no snapshot of {name} stored", hint=_NOTHING_STORED_HINT)
    result = acc.result()
    result["pair"] = name
    return json_response(result)


async def summarize(span: SpanningHistory, pair: str, lo: int | None, hi: int | None,
                    limit: int | None) -> SeriesSummary:
    """The window's newest ``limit`` snapshots, read newest first a store chunk (or an
    archive file) at a time and accumulated in a worker thread in batches: constant memory
    whatever the window (the whole window as a list took 80 MB a summary, and 20 of them
    1.6 GB). Past :data:`SUMMARY_MAX_ROWS` snapshots (only the archive holds that many) the
    answer is a 422 that says how to narrow it."""
    acc = SeriesSummary(newest_first=True)
    batch: list[Snapshot] = []
    levels = read = 0
    rows = (span.history(pair, since=lo, until=hi, limit=limit, order="desc")
            if span.archive is not None
            else span.store.history(pair, since=lo, until=hi, limit=limit, order="desc"))
    try:
        async for snap in rows:
            batch.append(snap)
            levels += len(snap.bids) + len(snap.asks)
            if len(batch) >= SUMMARY_BATCH or levels >= SUMMARY_BATCH_LEVELS:
                await asyncio.to_thread(_add_all, acc, batch)
                read += len(batch)
                batch, levels = [], 0
                if read > SUMMARY_MAX_ROWS:
                    raise InputError(
                        f"more than {SUMMARY_MAX_ROWS:,} snapshots of {pair} in that window",
                        hint="a later since, an earlier until, or limit=N (the newest N)")
    finally:
        await aclose(rows)
    if batch:
        await asyncio.to_thread(_add_all, acc, batch)
    return acc


def _add_all(acc: SeriesSummary, snaps: list[Snapshot]) -> None:
    for snap in snaps:
        acc.add(snap)
