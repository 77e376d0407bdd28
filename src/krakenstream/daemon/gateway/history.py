"""``/api/analysis``: what the history store holds of a pair, newest snapshot, history, summary.

``latest`` is the hottest route: its answer comes through the app's
:class:`.hub.LatestCache`. ``history`` streams its body (JSON, NDJSON or CSV, see
:mod:`.exports`) and answers 404 only for a pair with nothing stored at all: an empty window of
a known pair is an empty list. ``summary`` is computed off the event loop.
"""

# no "from __future__ import annotations": FastAPI reads the route signatures at runtime

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from ...core.analysis import SeriesSummary
from ...core.pairs import normalize_pair
from ...core.snapshot import csv_line
from ...errors import NotFound
from ...store.base import HistoryStore
from ...store.span import SpanningHistory
from .deps import Authed, Gateway, Pair, Store, gateway_of
from .errors import documented
from .exports import aclose, csv_body, json_body, ndjson_body
from .params import HistoryLimit, NewestLimit, Since, Until, parse_time
from .responses import json_response

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


@router.get("/api/analysis/history/{pair:path}", responses=documented(401, 404, 422, 503))
async def history(
    pair: Pair,
    claims: Authed,
    st: Store,
    request: Request,
    since: Since = None,
    until: Until = None,
    limit: HistoryLimit = None,
    order: Literal["desc", "asc"] = "desc",
    format: Literal["json", "csv", "ndjson"] = "json",
) -> Response:
    """Stored snapshots, newest first by default, streamed as JSON, NDJSON or CSV. A window
    that reaches below the oldest row the store holds is answered from the Parquet archive
    too (the store for the newest rows, the archive for older ones), every row marked by the
    gap rule (``core/gaps.py``); with ``since`` and no ``limit``, every row of the window."""
    name = normalize_pair(pair)
    lo, hi = parse_time("since", since), parse_time("until", until)
    csv = format == "csv"
    spanned = await _spanning_rows(gateway_of(request), st, name, lo, hi, limit, order, csv)
    rows: AsyncIterator[Any] = spanned if spanned is not None else (
        st.history_csv if csv else st.history_json)(
        name, since=lo, until=hi, limit=limit, order=order)
    try:
        first: Any = await anext(rows)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await aclose(rows)
        raise
    if first is None:
        await aclose(rows)
        if await st.count(name) == 0:
            raise NotFound(f"no snapshot of {name} stored", hint=_NOTHING_STORED_HINT)
    if format == "csv":
        filename = name.replace("/", "-")
        return StreamingResponse(
            csv_body(first, rows), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})
    if format == "ndjson":
        return StreamingResponse(ndjson_body(first, rows), media_type="application/x-ndjson")
    return StreamingResponse(json_body(name, order, first, rows), media_type="application/json")


async def _spanning_rows(gw: Gateway, st: HistoryStore, pair: str, lo: int | None,
                         hi: int | None, limit: int | None, order: str,
                         csv: bool) -> AsyncIterator[Any] | None:
    """The window's rows from the store and the archive (as snapshot JSON, or CSV lines with
    ``csv``; marked), when the window reaches below the store's oldest row and an archive
    exists; else None."""
    archive = gw.services.archive
    if archive is None or lo is None:
        return None
    span = SpanningHistory(st, archive)
    oldest = await span.oldest_in_store(pair)
    if oldest is not None and lo >= oldest:
        return None

    async def encoded() -> AsyncIterator[Any]:
        async for snap in span.history(pair, since=lo, until=hi, limit=limit, order=order):
            yield csv_line(snap.csv_row()) if csv else snap.to_json()

    return encoded()


@router.get("/api/analysis/summary/{pair:path}", responses=documented(401, 404, 422, 503))
async def summary(
    pair: Pair,
    claims: Authed,
    st: Store,
    since: Since = None,
    until: Until = None,
    limit: NewestLimit = None,
) -> Response:
    """Coverage, gaps, mid change and volatility, spread percentiles and imbalance over
    the stored snapshots in the window (see ``core.analysis.SeriesSummary``)."""
    name = normalize_pair(pair)
    lo, hi = parse_time("since", since), parse_time("until", until)
    rows = [row async for row in st.history_json(name, since=lo, until=hi, limit=limit,
                                                 order="desc")]
    if not rows and await st.count(name) == 0:
        raise NotFound(f"no snapshot of {name} stored", hint=_NOTHING_STORED_HINT)
    result = await asyncio.to_thread(summarize_rows, rows)
    result["pair"] = name
    return json_response(result)


def summarize_rows(rows_newest_first: list[bytes]) -> dict[str, Any]:
    """Off the event loop: decode stored snapshots and summarise them oldest first."""
    acc = SeriesSummary()
    for row in reversed(rows_newest_first):
        acc.add_dict(orjson.loads(row))
    return acc.result()
