"""``/api/pairs`` (gateway/pairs.py): list, track and untrack."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway_support import Stack, eventually, login, settings_for, stack, wait_snapshots
from krakenstream.daemon.refused import REFUSED_LISTED
from krakenstream.sim import SimServer


@pytest.mark.slow
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


#: pairs the simulator does not list: Kraken refuses each with its words
BOGUS = [f"ZZ{i:03d}/USD" for i in range(200)]


@pytest.mark.slow
async def test_refused_pairs_are_dropped_once_and_listed_for_a_while(
        kms_home: Path, sim: SimServer, caplog: pytest.LogCaptureFixture) -> None:
    """Kraken refuses 200 pairs: each is refused once (one log line each), dropped from what
    is tracked, listed by /api/pairs in error with Kraken's words (the newest 100), never
    sent again on a reconnect; /health and /metrics stay as small as what is tracked (issue
    14 item 6)."""
    caplog.set_level(logging.INFO)
    settings = settings_for(kms_home, sim.url, KMS_KRAKEN_PAIRS=",".join(["ETH/USD", *BOGUS]),
                            KMS_KRAKEN_SUBSCRIBE_BATCH="50", KMS_KRAKEN_SUBSCRIBE_PACING="0",
                            KMS_KRAKEN_PAIRS_PER_CONNECTION="1000")
    async with stack(settings) as s:
        c, role = s.client, s.services.orderbook
        assert role is not None
        s.token = await login(c)
        await eventually(lambda: _true(role.pairs == ("ETH/USD",)
                                       and role.refused.total == 200))
        assert len(role.refused) == REFUSED_LISTED == 100
        await wait_snapshots(s)
        listed = {p["pair"]: p for p in (await c.get("/api/pairs", headers=s.auth)).json()[
            "pairs"]}
        assert listed["ETH/USD"]["state"] == "live"
        assert len(listed) == 101 and "ZZ099/USD" not in listed
        assert listed["ZZ107/USD"]["state"] == "error"
        assert listed["ZZ107/USD"]["error"] == "Currency pair not supported ZZ107/USD"
        health = await c.get("/health")
        assert len(health.content) < 8_000, len(health.content)
        assert health.json()["feed"]["refused"] == 100
        assert health.json()["status"] == "ok"  # what is tracked is live
        metrics = (await c.get("/metrics")).text
        assert "ZZ1" not in metrics
        assert 'kms_feed_refused 200.0' in metrics and 'kms_feed_pairs{state="live"} 1.0' in metrics

        def refusals() -> int:
            return sum("feed subscribe refused" in r.getMessage() for r in caplog.records)

        assert refusals() == 200
        # a reconnect resends none of them
        reconnects = role.connection().reconnects
        await sim.fault("drop")
        await eventually(lambda: _true(role.connection().reconnects > reconnects
                                       and role.status()["ETH/USD"].state.value == "live"))
        assert refusals() == 200
        # untracked: no longer listed; tracked again: asked again (and refused again)
        r = await c.delete("/api/pairs/ZZ107-USD", headers=s.auth)
        assert r.status_code == 200 and r.json()["state"] == "untracked"
        names = [p["pair"] for p in (await c.get("/api/pairs", headers=s.auth)).json()["pairs"]]
        assert "ZZ107/USD" not in names and "ZZ108/USD" in names
        r = await c.post("/api/pairs", json={"pair": "ZZ108/USD"}, headers=s.auth)
        assert r.status_code == 202
        await eventually(lambda: _true(refusals() == 201 and role.refused.total == 201))
        # one line per batch of refusals dropped, not one per pair
        drops = [r for r in caplog.records if r.getMessage().startswith("pairs dropped n=")]
        assert sum(int(r.getMessage().split()[2].removeprefix("n=")) for r in drops) == 201
        assert len(drops) < 20


@pytest.mark.slow
async def test_max_pairs_bounds_what_is_tracked(kms_home: Path, sim: SimServer) -> None:
    settings = settings_for(kms_home, sim.url, KMS_KRAKEN_MAX_PAIRS="2")
    async with stack(settings) as s:
        c = s.client
        s.token = await login(c)
        r = await c.post("/api/pairs", json={"pair": "BTC/USD"}, headers=s.auth)
        assert r.status_code == 202
        r = await c.post("/api/pairs", json={"pair": "SOL/USD"}, headers=s.auth)
        assert r.status_code == 409
        assert r.json()["error"] == ("cannot track SOL/USD: it would make 3 pairs, more than "
                                     "kraken.max_pairs (2)")
        assert r.json()["hint"] == "untrack some pairs, or raise kraken.max_pairs"


@pytest.mark.slow
async def test_refused_pairs_are_listed_for_refused_keep_seconds(
        kms_home: Path, sim: SimServer) -> None:
    settings = settings_for(kms_home, sim.url, KMS_KRAKEN_PAIRS="ETH/USD,ZZ001/USD",
                            KMS_KRAKEN_REFUSED_KEEP="0.5")
    async with stack(settings) as s:
        role = s.services.orderbook
        assert role is not None
        await eventually(lambda: _true("ZZ001/USD" in role.refused))
        await eventually(lambda: _true(role.refused_status() == {}))
        assert role.pairs == ("ETH/USD",)


async def _true(value: bool) -> bool:
    return value


@pytest.mark.slow
async def test_an_untracked_pair_leaves_no_metric_series(gw: Stack) -> None:
    c = gw.client
    gw.token = await login(c)
    assert (await c.post("/api/pairs", json={"pair": "BTC/USD"}, headers=gw.auth)
            ).status_code == 202
    await wait_snapshots(gw, "BTC-USD")
    assert 'pair="BTC/USD"' in (await c.get("/metrics")).text
    assert (await c.delete("/api/pairs/BTC-USD", headers=gw.auth)).status_code == 200
    text = (await c.get("/metrics")).text
    assert 'pair="BTC/USD"' not in text and 'kms_feed_pair_live{pair="ETH/USD"}' in text
