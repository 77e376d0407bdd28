"""``/api/analysis/bars``: a pair's snapshots summed up per interval (1m, 5m, 1h, …).

Per bar: the mid's open, high, low and close, the spread's mean and max (absolute and in
basis points), the microprice at the close, the mean imbalance, how many snapshots fell
inside and whether a gap (a ``gap_before`` mark) falls inside (:mod:`krakenstream.core.bars`
says how each is computed, exactly). From the window store and the Parquet archive alike:
the rows come from :class:`~krakenstream.store.span.SpanningHistory` a table at a time,
marked by the gap rule, and are summed up a column at a time in a worker thread
(:mod:`krakenstream.store.archive.bars`).

Without ``since`` the bars cover what the window store holds (as ``history`` does); with it,
as far back as the archive goes. An answer holds at most :data:`MAX_BARS` bars: a longer
one is a 422 that says how to narrow it. Bars are a heavy read like a summary: they take one
of the ``gateway.max_summaries`` slots while they are computed (:mod:`.slots`; past the
bound, 503 with ``Retry-After``).
"""

# no "from __future__ import annotations": FastAPI reads the route signatures at runtime

import asyncio
from typing import Literal

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ...core.bars import BAR_COLUMNS, EVERY_INPUT_PATTERN, Bar, parse_every
from ...core.pairs import normalize_pair
from ...errors import InputError, NotFound
from ...store.archive.bars import TableBars
from ...store.base import HistoryStore
from ...store.span import SpanningHistory
from .deps import Authed, Pair, Store, gateway_of
from .errors import documented
from .params import Since, Until, parse_time
from .responses import MEDIA_TYPES, formats

router = APIRouter(tags=["analysis"])

#: the most bars one answer holds (a month of 1-minute bars)
MAX_BARS = 45_000


@router.get("/api/analysis/bars/{pair:path}",
            responses={**documented(401, 404, 422, 503), **formats("csv")})
async def bars(
    pair: Pair,
    claims: Authed,
    st: Store,
    request: Request,
    every: str = Query("1m", description="the interval: a count and a unit s, m, h or d "
                       "(30s, 1m, 5m, 1h, 1d; at most 7d); bars start on multiples of it "
                       "from the epoch, UTC",
                       json_schema_extra={"pattern": EVERY_INPUT_PATTERN}),
    since: Since = None,
    until: Until = None,
    format: Literal["json", "csv"] = "json",
) -> Response:
    """Bars of the pair's stored snapshots, oldest first: mid OHLC, spread mean and max
    (absolute and bps), microprice close, mean imbalance, snapshot count, gap inside."""
    name = normalize_pair(pair)
    every_ms = parse_every(every)
    lo, hi = parse_time("since", since), parse_time("until", until)
    gw = gateway_of(request)
    span = SpanningHistory(st, gw.services.archive)
    slot = gw.summaries.take()  # a heavy read, bounded like a summary: 503 past the bound
    try:
        if lo is None:
            lo = await span.oldest_in_store(name)
        found = [] if lo is None else await _bars(span, name, every_ms, lo, hi)
    finally:
        slot.release()
    if not found:
        await _known(st, span, name)
    if format == "csv":
        lines = [",".join(BAR_COLUMNS), *(",".join(b.csv_row()) for b in found)]
        filename = f"{name.replace('/', '-')}-{every}.csv"
        return Response("\n".join(lines) + "\n", media_type=MEDIA_TYPES["csv"],
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    body = {"pair": name, "every": every.strip().lower(), "every_ms": every_ms,
            "bars": [b.to_dict() for b in found]}
    return Response(orjson.dumps(body), media_type=MEDIA_TYPES["json"])


async def _bars(span: SpanningHistory, pair: str, every_ms: int, lo: int,
                hi: int | None) -> list[Bar]:
    acc = TableBars(every_ms, pair)
    out: list[Bar] = []
    tables = span.tables(pair, since=lo, until=hi, order="asc", depth=1)
    try:
        async for table in tables:
            out += await asyncio.to_thread(acc.add, table)
            if len(out) > MAX_BARS:
                raise InputError(
                    f"more than {MAX_BARS:,} bars of {pair} in that window",
                    hint="a later since, an earlier until, or a longer every")
    finally:
        await tables.aclose()  # type: ignore[attr-defined]
    return out + acc.finish()


async def _known(st: HistoryStore, span: SpanningHistory, pair: str) -> None:
    """404 for a pair with nothing stored anywhere (an empty window of a known pair is [])."""
    if await st.count(pair) > 0:
        return
    archive = span.archive
    if archive is not None and pair in await asyncio.to_thread(archive.pairs):
        return
    raise NotFound(f"no snapshot of {pair} stored", hint="GET /api/pairs lists the tracked pairs")
