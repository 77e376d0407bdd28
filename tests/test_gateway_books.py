"""``/api/orderbook`` (gateway/books.py): the live book in any pair spelling, and the book
from the bus where the orderbook role runs elsewhere."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway_support import (
    Stack,
    eventually,
    login,
    sample_snapshot,
    settings_for,
    stack,
    wait_snapshots,
)


@pytest.mark.slow
async def test_pair_spellings_and_live_orderbook(gw: Stack) -> None:
    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw)
    seen = set()
    for spelling in ("ETH-USD", "eth-usd", "ETH%2FUSD", "eth%2fusd"):
        r = await c.get(f"/api/orderbook/{spelling}?depth=3", headers=gw.auth)
        assert r.status_code == 200, (spelling, r.text)
        book = r.json()
        seen.add(book["pair"])
        assert book["source"] == "live" and book["state"] == "live"
        assert len(book["bids"]) == 3 and len(book["asks"]) == 3
        assert book["best_bid"] == book["bids"][0][0] and book["best_ask"] == book["asks"][0][0]
        assert float(book["best_bid"]) < float(book["best_ask"])
    assert seen == {"ETH/USD"}
    r = await c.get("/api/orderbook/ETH-USD", headers=gw.auth)
    assert len(r.json()["bids"]) == 10  # default: the whole book (kraken.depth)


async def test_gateway_without_orderbook_role(kms_home: Path) -> None:
    """Pair changes need the orderbook role (503); books come from snapshots on the bus."""
    async with stack(settings_for(kms_home), roles=("gateway",)) as gw:
        c = gw.client
        gw.token = await login(c)
        r = await c.post("/api/pairs", json={"pair": "ETH/USD"}, headers=gw.auth)
        assert r.status_code == 503 and "orderbook role" in r.json()["error"]
        r = await c.delete("/api/pairs/ETH-USD", headers=gw.auth)
        assert r.status_code == 503
        r = await c.get("/api/orderbook/ETH-USD", headers=gw.auth)
        assert r.status_code == 404

        snap = sample_snapshot(ts=round(time.time() * 1000))
        await gw.services.bus.publish(snap)

        async def book() -> object:
            r = await c.get("/api/orderbook/ETH-USD?depth=1", headers=gw.auth)
            return r.json() if r.status_code == 200 else None

        got = await eventually(book, within=5)
        assert got["source"] == "snapshot" and got["checksum"] == snap.checksum
        assert got["bids"] == [snap.to_dict()["bids"][0]]
        pairs = (await c.get("/api/pairs", headers=gw.auth)).json()["pairs"]
        assert pairs[0]["pair"] == "ETH/USD" and pairs[0]["state"] == "live"

        old = sample_snapshot(ts=round(time.time() * 1000) - 60_000, pair="BTC/USD")
        await gw.services.bus.publish(old)
        hub = gw.app.state.gateway.hub

        async def tapped() -> bool:  # the gateway's bus tap has seen it
            return "BTC/USD" in hub.latest

        await eventually(tapped, within=5)
        r = await c.get("/api/orderbook/BTC-USD", headers=gw.auth)
        assert r.status_code == 503 and "stale" in r.json()["error"]
