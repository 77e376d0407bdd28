"""``/api/orderbook``: a pair's live book, to a depth.

From the orderbook role when it runs in this process (``source: live``, the book in memory);
else from the newest snapshot of the pair the bus tap has seen (``source: snapshot``), as long
as it is recent enough to call live. A book that is not live is a 503 saying its state.
"""

# no "from __future__ import annotations": FastAPI reads the route signatures at runtime

import time
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from ...core.pairs import normalize_pair
from ...core.snapshot import Snapshot
from ...core.times import iso_ms
from ...errors import BackendUnavailable, NotFound
from ...feed.status import PairState
from .deps import Authed, Pair, State
from .errors import documented
from .params import Depth
from .responses import json_response

router = APIRouter(tags=["orderbook"])


@router.get("/api/orderbook/{pair:path}", responses=documented(401, 404, 422, 503))
async def orderbook(pair: Pair, claims: Authed, gw: State, depth: Depth = None) -> Response:
    """The live book of an in-process orderbook role, else the newest bus snapshot."""
    name = normalize_pair(pair)
    role = gw.services.orderbook
    if role is not None and name in role.pairs:
        book = role.book(name)
        if book is None:
            st = role.status().get(name)
            state = st.state.value if st is not None else "untracked"
            raise BackendUnavailable(f"{name} is not live (state {state})")
        snap = Snapshot.from_book(book, ts=round(time.time() * 1000), seq=0)
        return json_response(book_answer(snap, "live", depth))
    seen = gw.hub.latest.get(name)
    if seen is None:
        raise NotFound(f"{name} is not tracked: no book and no snapshot of it seen",
                       hint="POST /api/pairs to track it")
    age_ms = time.time() * 1000 - seen.ts
    if age_ms > gw.live_age_ms:
        raise BackendUnavailable(
            f"{name} is not live (state stale: its newest snapshot is "
            f"{age_ms / 1000:.0f} s old)")
    return json_response(book_answer(seen, "snapshot", depth))


def book_answer(snap: Snapshot, source: str, depth: int | None) -> dict[str, Any]:
    """The order book answer; always ``state: live`` (a book that is not is a 503)."""
    d = snap.to_dict()
    bids, asks = d["bids"], d["asks"]
    if depth is not None:
        bids, asks = bids[:depth], asks[:depth]
    return {"pair": snap.pair, "state": PairState.LIVE.value, "source": source,
            "checksum": snap.checksum, "exchange_ts": snap.exchange_ts, "time": iso_ms(snap.ts),
            "best_bid": d["best_bid"], "best_ask": d["best_ask"], "spread": d["spread"],
            "mid": d["mid"], "bids": bids, "asks": asks}
