"""``/api/users`` (gateway/users.py): register, log in, me; their refusals, the login throttle,
and bcrypt kept off the event loop."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import orjson
import pytest

from gateway_support import EMAIL, PASSWORD, Stack, login, settings_for, stack, wait_snapshots
from krakenstream.sim.server import SimServer


@pytest.mark.slow
async def test_user_errors(gw: Stack) -> None:
    c = gw.client
    await login(c)
    r = await c.post("/api/users/register", json={"email": EMAIL.upper(), "password": PASSWORD})
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    r = await c.post("/api/users/register", json={"email": "not-an-email", "password": PASSWORD})
    assert r.status_code == 422 and "email" in r.json()["error"]
    r = await c.post("/api/users/register", json={"email": "b@example.com", "password": "short"})
    assert r.status_code == 422 and r.json()["code"] == "invalid"
    assert "8" in r.json()["error"]  # the policy says how long
    r = await c.post("/api/users/register", json={"email": "b@example.com"})
    assert r.status_code == 422 and r.json()["error"].startswith("password:")
    r = await c.post("/api/users/register", content=b"{nope",
                     headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "the request body is not valid JSON"
    r = await c.post("/api/users/register", json=["a", "b"])
    assert r.status_code == 422 and r.json()["error"] == "the request body must be a JSON object"
    r = await c.post("/api/users/register", content=orjson.dumps({"email": EMAIL}),
                     headers={"Content-Type": "text/plain"})
    assert r.status_code == 422
    assert r.json()["error"] == "the request body must be JSON, sent as application/json"
    r = await c.post("/api/users/login", json={"email": EMAIL, "password": "wrong password"})
    assert r.status_code == 401 and r.json()["error"] == "invalid email or password"
    r = await c.get("/api/users/me", headers={"Authorization": "Bearer not.a.token"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    r = await c.get("/api/users/me", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 401
    nested = base64.urlsafe_b64encode(b"[" * 3000).rstrip(b"=").decode()  # a RecursionError
    r = await c.get("/api/users/me", headers={"Authorization": f"Bearer {nested}.e30.c2ln"})
    assert r.status_code == 401 and r.json()["error"].startswith("malformed token"), r.text


@pytest.mark.slow
async def test_login_throttled_with_retry_after(kms_home: Path, sim: SimServer) -> None:
    settings = settings_for(kms_home, sim.url, KMS_AUTH_LOGIN_MAX_FAILURES="2")
    async with stack(settings) as gw:
        await login(gw.client)
        bad = {"email": EMAIL, "password": "wrong password"}
        for _ in range(2):
            assert (await gw.client.post("/api/users/login", json=bad)).status_code == 401
        r = await gw.client.post("/api/users/login", json={"email": EMAIL, "password": PASSWORD})
        assert r.status_code == 429
        assert r.json()["code"] == "throttled"
        assert int(r.headers["Retry-After"]) >= 1
        metrics = (await gw.client.get("/metrics")).text
        assert "kms_logins_failed 2.0" in metrics and "kms_logins_throttled 1.0" in metrics


@pytest.mark.slow
async def test_logins_do_not_stall_other_requests(kms_home: Path, sim: SimServer) -> None:
    """bcrypt runs off the event loop: requests keep flowing while logins hash. Proven by
    order, not by the clock: requests answered from start to end while one and the same
    bcrypt run was under way (none began or ended meanwhile). How long they take beside the
    logins is ``bench/responsiveness.py``'s figure."""
    async with stack(settings_for(kms_home, sim.url, KMS_AUTH_BCRYPT_COST="11")) as gw:
        c = gw.client
        gw.token = await login(c)
        await wait_snapshots(gw)
        assert gw.services.auth is not None
        hashing = gw.services.auth.hasher.queue

        def one_run() -> tuple[int, int]:  # (runs begun, runs in a thread now)
            return hashing.started, hashing.running

        during_a_hash = answered = 0
        logins = [asyncio.create_task(login(c, register=False)) for _ in range(4)]
        while not all(t.done() for t in logins):
            before = one_run()
            r = await c.get("/api/analysis/latest/ETH-USD", headers=gw.auth)
            assert r.status_code == 200
            answered += 1
            if before[1] and one_run() == before:  # begun and answered inside one bcrypt run
                during_a_hash += 1
        await asyncio.gather(*logins)
        assert hashing.started >= 5  # one run a login, the first included
        # on the loop, a bcrypt run would hold every request until it ended
        assert during_a_hash >= 10, (during_a_hash, answered)
