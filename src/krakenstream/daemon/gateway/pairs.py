"""``/api/pairs``: the tracked pairs with their feed state; track and untrack, by pair or
by pattern (``*/USD``: what Kraken lists that matches, now and later).

Only admins change what is tracked (a reader's token is a 403), and only the orderbook role
can, so changes need it in this process (503 elsewhere, naming where to go). Without it the
list is what the bus and the store know: each pair seen or stored, ``live`` while its newest
snapshot on the bus is recent, else ``unknown``.
"""

# no "from __future__ import annotations": FastAPI reads the route signatures at runtime

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from ...core.pairs import SELECTOR_INPUT_PATTERN, is_pattern, normalize_selector
from ...feed.status import PairState
from ...store.base import HistoryStore
from .deps import Admin, Authed, Gateway, Selector, State, Store
from .errors import documented
from .responses import json_response

router = APIRouter(tags=["pairs"])


class PairRequest(BaseModel):
    pair: Annotated[str, Field(
        description="a pair (ETH/USD, eth-usd) or a pattern (*/USD, BTC/*, *)",
        json_schema_extra={"pattern": SELECTOR_INPUT_PATTERN})]


@router.get("/api/pairs", responses=documented(401, 503))
async def list_pairs(claims: Authed, gw: State, st: Store) -> Response:
    """Tracked pairs with their feed state, counters and stored snapshot count; the pairs
    Kraken refused lately (dropped, in ``error`` with its words, for ``kraken.refused_keep``
    seconds); and, with an archive, its disk use (``archive_bytes``, ``archive_days``,
    ``archive_bytes_per_day``)."""
    if gw.services.orderbook is None:
        entries = await _seen_elsewhere(gw, st)
    else:
        role = gw.services.orderbook
        status = {**role.refused_status(), **role.status()}
        names = sorted(status)
        counts = await asyncio.gather(*(st.count(p) for p in names))
        entries = [{**status[name].to_dict(), "snapshots": n}
                   for name, n in zip(names, counts, strict=True)]
    if gw.usage is not None:  # the archive's disk use: bytes, UTC days, bytes a day
        usage = await gw.usage.get()
        for entry in entries:
            entry.update(usage.pair(entry["pair"]))
    return json_response({"pairs": entries})


async def _seen_elsewhere(gw: Gateway, st: HistoryStore) -> list[dict[str, Any]]:
    """Another process tracks the pairs: what the bus and the store know of them."""
    now_ms = time.time() * 1000
    latest = gw.hub.latest
    names = sorted(set(await st.pairs()) | set(latest))
    counts = await asyncio.gather(*(st.count(p) for p in names))
    out: list[dict[str, Any]] = []
    for name, n in zip(names, counts, strict=True):
        ts = latest.ts(name)
        live = ts is not None and now_ms - ts <= gw.live_age_ms
        out.append({"pair": name, "state": "live" if live else "unknown",
                    "frames": None, "mismatches": None, "crossed": None,
                    "resyncs": None, "reconnects": None, "last_frame_time": None,
                    "since": None, "error": None, "snapshots": n})
    return out


@router.post("/api/pairs", status_code=202,
             responses=documented(401, 403, 409, 413, 422, 503))
async def track(body: PairRequest, caller: Admin, gw: State) -> Response:
    """Start tracking a pair (admins only; it goes live once its first full book verifies),
    or a pattern (``*/EUR``, ``BTC/*``, ``*``): the online pairs Kraken lists that match, now
    and as they are listed. ``added`` names the pairs this added."""
    role = gw.orderbook()
    name = normalize_selector(body.pair)
    added = await role.track(name)
    if is_pattern(name):
        return json_response({"pair": name, "state": "tracking", "added": added}, 202)
    st = role.status().get(name)
    state = st.state.value if st is not None else PairState.CONNECTING.value
    return json_response({"pair": name, "state": state, "added": added}, 202)


@router.delete("/api/pairs/{pair:path}", responses=documented(401, 403, 404, 422, 503))
async def untrack(pair: Selector, caller: Admin, gw: State) -> Response:
    """Stop tracking a pair, or a pattern and the pairs it brought (``removed``); admins
    only."""
    role = gw.orderbook()
    name = normalize_selector(pair)
    removed = await role.untrack(name)
    return json_response({"pair": name, "state": "untracked", "removed": removed})
