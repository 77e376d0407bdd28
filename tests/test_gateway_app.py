"""The app as assembled (gateway/app.py): a user's walk through it, and one set of route
objects serving every app, each over its own state."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway_support import EMAIL, PASSWORD, Stack, settings_for, stack, wait_snapshots
from krakenstream.core.snapshot import Snapshot
from krakenstream.daemon.gateway import create_app
from krakenstream.daemon.gateway.app import ROUTERS
from krakenstream.daemon.services import build_services


@pytest.mark.slow
async def test_walkthrough(gw: Stack) -> None:
    c = gw.client
    r = await c.post("/api/users/register", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 201
    user = r.json()
    assert user["email"] == EMAIL and user["id"] >= 1 and user["created_at"].endswith("Z")
    r = await c.post("/api/users/login", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_at"].endswith("Z")
    token = body["token"]

    r = await c.get("/api/analysis/history/ETH-USD")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert r.json()["code"] == "unauthorized" and r.json()["hint"] == "kms login"

    await wait_snapshots(gw, n=3)
    auth = {"Authorization": f"Bearer {token}"}
    r = await c.get("/api/analysis/history/ETH-USD", headers=auth)
    assert r.status_code == 200
    body = r.json()
    assert body["pair"] == "ETH/USD" and body["order"] == "desc"
    ts = [s["ts"] for s in body["snapshots"]]
    assert len(ts) >= 3 and ts == sorted(ts, reverse=True)
    # every snapshot on the 0.2 s wall-clock grid
    assert all(t % 200 == 0 for t in ts)

    r = await c.get("/api/users/me", headers=auth)
    assert r.status_code == 200 and r.json()["email"] == EMAIL
    r = await c.get("/api/analysis/latest/ETH-USD", headers=auth)
    assert r.status_code == 200
    snap = Snapshot.from_dict(r.json())
    assert snap.pair == "ETH/USD" and snap.best_bid is not None


async def test_every_app_has_the_routes_and_its_own_state(kms_home: Path) -> None:
    services = await build_services(settings_for(kms_home), ("gateway",), start=False)
    try:
        one, two = create_app(services), create_app(services)
    finally:
        await services.close()
    declared = [route for router in ROUTERS for route in router.routes]
    for app in (one, two):
        assert all(route in app.routes for route in declared)
    # the routes are shared (they hold no state); the state is each app's own
    assert one.state.gateway is not two.state.gateway
    assert one.state.gateway.hub is not two.state.gateway.hub
    assert one.state.gateway.services is two.state.gateway.services is services


async def test_a_trailing_slash_is_not_redirected_to_the_host_it_named(kms_home: Path) -> None:
    """Starlette's slash redirect builds its Location from the Host header: a client (or a
    proxy's cache) could be sent anywhere. The canonical path is the only one served."""
    async with stack(settings_for(kms_home), roles=("gateway",)) as s:
        r = await s.client.get("/health/", headers={"Host": "evil.example"})
        assert r.status_code == 404, r.headers
        assert "location" not in r.headers
        assert r.json()["error"] == "no such route: GET /health/"
        assert r.json()["code"] == "not_found"
        # /api/pairs/ is DELETE /api/pairs/{pair} with no pair: a 405, never a redirect
        r = await s.client.get("/api/pairs/", headers={"Host": "evil.example"})
        assert r.status_code == 405 and "location" not in r.headers
