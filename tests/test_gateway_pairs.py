"""``/api/pairs`` (gateway/pairs.py): list, track and untrack."""

from __future__ import annotations

from gateway_support import Stack, eventually, login, wait_snapshots


async def test_track_and_untrack_pairs(gw: Stack) -> None:
    c = gw.client
    gw.token = await login(c)
    r = await c.post("/api/pairs", json={"pair": "btc-usd"})
    assert r.status_code == 401
    r = await c.post("/api/pairs", json={"pair": "btc-usd"}, headers=gw.auth)
    assert r.status_code == 202 and r.json()["pair"] == "BTC/USD"
    assert r.json()["state"] in ("connecting", "live") and r.json()["added"] == ["BTC/USD"]
    r = await c.post("/api/pairs", json={"pair": "BTC/USD"}, headers=gw.auth)
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    r = await c.post("/api/pairs", json={"pair": "BTCUSD"}, headers=gw.auth)
    assert r.status_code == 422

    async def btc_live() -> bool:
        pairs = (await c.get("/api/pairs", headers=gw.auth)).json()["pairs"]
        states = {p["pair"]: p["state"] for p in pairs}
        return states.get("BTC/USD") == "live"

    await eventually(btc_live)
    await wait_snapshots(gw, "BTC-USD")
    pairs = (await c.get("/api/pairs", headers=gw.auth)).json()["pairs"]
    assert [p["pair"] for p in pairs] == ["BTC/USD", "ETH/USD"]
    assert all(p["snapshots"] >= 1 and p["frames"] >= 1 for p in pairs)

    r = await c.delete("/api/pairs/BTC%2FUSD", headers=gw.auth)
    assert r.status_code == 200 and r.json() == {"pair": "BTC/USD", "state": "untracked",
                                                 "removed": ["BTC/USD"]}
    r = await c.delete("/api/pairs/BTC-USD", headers=gw.auth)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    pairs = (await c.get("/api/pairs", headers=gw.auth)).json()["pairs"]
    assert [p["pair"] for p in pairs] == ["ETH/USD"]
