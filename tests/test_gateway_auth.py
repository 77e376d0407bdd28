"""Who may do what, over HTTP and the stream: roles (readers read, admins manage pairs and
accounts), the registration policy and limits, the bounded hash queue, token revocation and
disabled accounts on every route and on a live stream (on this gateway at once, on another
within ``auth.access_ttl``), and which proxies' ``X-Forwarded-For`` is believed.

In-process through httpx's ASGI transport, and over loopback through uvicorn where the server
matters (proxy headers, WebSockets)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway_support import PASSWORD, Stack, login, served, settings_for, stack
from krakenstream import wire
from krakenstream.sim.server import SimServer
from krakenstream.users import Lane

ADMIN = "admin@example.com"
READER = "reader@example.com"


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(pairs=["ETH/USD", "BTC/USD"], seed=1) as server:
        yield server


@pytest.fixture
async def gw(kms_home: Path) -> AsyncIterator[Stack]:
    async with stack(settings_for(kms_home), roles=("gateway",)) as s:
        yield s


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(s: Stack, email: str, password: str = PASSWORD) -> tuple[int, Any]:
    r = await s.client.post("/api/users/register", json={"email": email, "password": password})
    return r.status_code, r.json()


async def admin_and_reader(s: Stack) -> tuple[str, str]:
    """The first account (admin) and a second (reader), logged in: their tokens."""
    return await login(s.client, ADMIN), await login(s.client, READER)


async def refused_within(client: httpx.AsyncClient, token: str, match: str,
                         within: float = 10.0, path: str = "/api/users/me") -> httpx.Response:
    """Until ``path`` answers 401 for ``token`` (polled with a deadline)."""
    deadline = time.monotonic() + within
    while True:
        r = await client.get(path, headers=bearer(token))
        if r.status_code == 401:
            assert match in r.json()["error"], r.json()
            return r
        assert r.status_code == 200, r.text
        assert time.monotonic() < deadline, f"{path} still accepted the token after {within} s"
        await asyncio.sleep(0.05)


# -- roles ----------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_reader_token_is_refused_403_when_it_tracks_a_pair(
    kms_home: Path, sim: SimServer
) -> None:
    """RELIABILITY.md cites this test: a reader may read, not track or untrack."""
    async with stack(settings_for(kms_home, sim.url)) as s:
        admin, reader = await admin_and_reader(s)
        r = await s.client.get("/api/users/me", headers=bearer(reader))
        assert r.json()["role"] == "reader" and r.json()["disabled"] is False
        r = await s.client.post("/api/pairs", json={"pair": "BTC/USD"}, headers=bearer(reader))
        assert r.status_code == 403
        assert r.json() == {
            "error": f"POST /api/pairs needs an admin account; {READER} is a reader",
            "code": "forbidden",
            "hint": "an admin can promote you: kms user promote EMAIL",
        }
        r = await s.client.delete("/api/pairs/ETH-USD", headers=bearer(reader))
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        assert (await s.client.get("/api/pairs", headers=bearer(reader))).status_code == 200
        assert s.services.orderbook is not None
        assert "BTC/USD" not in s.services.orderbook.pairs  # the refusal changed nothing
        # the admin may
        r = await s.client.post("/api/pairs", json={"pair": "BTC/USD"}, headers=bearer(admin))
        assert r.status_code == 202 and r.json()["pair"] == "BTC/USD"
        r = await s.client.delete("/api/pairs/BTC-USD", headers=bearer(admin))
        assert r.status_code == 200
        # promoted, the reader may too, with the token it already holds
        me = (await s.client.get("/api/users/me", headers=bearer(reader))).json()
        r = await s.client.post(f"/api/users/{me['id']}/promote", headers=bearer(admin))
        assert r.status_code == 200 and r.json()["role"] == "admin"
        r = await s.client.post("/api/pairs", json={"pair": "BTC/USD"}, headers=bearer(reader))
        assert r.status_code == 202


# -- registration ---------------------------------------------------------------------------------


async def test_closed_registration_is_403_after_the_first_account(kms_home: Path) -> None:
    settings = settings_for(kms_home, KMS_AUTH_REGISTRATION="closed")
    async with stack(settings, roles=("gateway",)) as s:
        status, body = await register(s, "founder@example.com")
        assert status == 201 and body["role"] == "admin"
        r = await s.client.post("/api/users/register",
                                json={"email": "walk-in@example.com", "password": PASSWORD})
        assert r.status_code == 403
        assert r.json() == {"error": "registration is closed: only an admin creates accounts",
                            "code": "forbidden", "hint": "ask an admin to run: kms user add EMAIL"}


async def test_registrations_are_limited_per_address(kms_home: Path) -> None:
    settings = settings_for(kms_home, KMS_AUTH_REGISTRATION_MAX="3")
    async with stack(settings, roles=("gateway",)) as s:
        for i in range(3):
            assert (await register(s, f"user{i}@example.com"))[0] == 201
        r = await s.client.post("/api/users/register",
                                json={"email": "one-more@example.com", "password": PASSWORD})
        assert r.status_code == 429 and r.json()["code"] == "throttled"
        assert "too many registrations from this address" in r.json()["error"]
        assert 3500 < int(r.headers["Retry-After"]) <= 3600


async def test_a_full_hash_queue_is_503_with_retry_after(kms_home: Path) -> None:
    settings = settings_for(kms_home, KMS_AUTH_HASH_QUEUE="0")
    async with stack(settings, roles=("gateway",)) as s:
        assert s.services.auth is not None
        queue = s.services.auth.hasher.queue
        queue.workers = 1
        started = asyncio.Event()
        release = asyncio.Event()
        loop = asyncio.get_running_loop()

        def busy() -> None:  # holds the only worker, as a hash in progress would
            loop.call_soon_threadsafe(started.set)
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10)

        holder = asyncio.create_task(queue.run(Lane.SIGNUP, busy))
        await started.wait()
        r = await s.client.post("/api/users/register",
                                json={"email": "flood@example.com", "password": PASSWORD})
        release.set()
        await holder
        assert r.status_code == 503 and r.json()["code"] == "unavailable"
        assert "busy hashing passwords" in r.json()["error"]
        assert int(r.headers["Retry-After"]) >= 1
        assert (await register(s, "flood@example.com"))[0] == 201  # fine once it drains


# -- tokens that end when they should --------------------------------------------------------------


@pytest.mark.slow
async def test_logout_revokes_the_token_on_every_route_at_once(kms_home: Path,
                                                               sim: SimServer) -> None:
    async with stack(settings_for(kms_home, sim.url)) as s:
        admin, _ = await admin_and_reader(s)
        other = await login(s.client, ADMIN, register=False)
        assert (await s.client.get("/api/pairs", headers=bearer(admin))).status_code == 200
        r = await s.client.post("/api/users/logout", headers=bearer(admin))
        assert r.status_code == 200 and r.json() == {"revoked": True}
        for method, path in [("GET", "/api/pairs"), ("GET", "/api/users/me"),
                             ("GET", "/api/analysis/latest/ETH-USD"),
                             ("POST", "/api/pairs"), ("GET", "/api/users"),
                             ("POST", "/api/users/logout")]:
            r = await s.client.request(method, path, headers=bearer(admin),
                                       json={"pair": "BTC/USD"})
            assert r.status_code == 401, (method, path, r.text)
            assert "revoked (logged out)" in r.json()["error"]
        # the same account's other session goes on
        assert (await s.client.get("/api/pairs", headers=bearer(other))).status_code == 200


@pytest.mark.slow
async def test_disable_and_logout_reach_another_gateway_within_access_ttl(
    kms_home: Path,
) -> None:
    """Two gateway processes (two stacks) over one users database: a change made through one
    is refused by the other within auth.access_ttl, although it had the token cached."""
    settings = settings_for(kms_home, KMS_AUTH_ACCESS_TTL="0.5")
    async with stack(settings, roles=("gateway",)) as one, \
            stack(settings, roles=("gateway",)) as two:
        admin, reader = await admin_and_reader(one)
        reader_other = await login(one.client, READER, register=False)
        for token in (admin, reader, reader_other):  # each verified and cached on two
            assert (await two.client.get("/api/users/me", headers=bearer(token))).status_code \
                == 200
        await one.client.post("/api/users/logout", headers=bearer(reader))
        await refused_within(two.client, reader, "revoked (logged out)", path="/api/pairs")
        me = (await one.client.get("/api/users/me", headers=bearer(reader_other))).json()
        r = await one.client.post(f"/api/users/{me['id']}/disable", headers=bearer(admin))
        assert r.status_code == 200 and r.json()["disabled"] is True
        # at once on the gateway that disabled it, within the ttl on the other
        r = await one.client.get("/api/users/me", headers=bearer(reader_other))
        assert r.status_code == 401 and "disabled" in r.json()["error"]
        await refused_within(two.client, reader_other, "disabled")
        r = await two.client.post("/api/users/login", json={"email": READER,
                                                            "password": PASSWORD})
        assert r.status_code == 403 and r.json()["error"] == "this account is disabled"
        # deleted: its tokens stop too
        third = await login(one.client, "third@example.com")
        assert (await two.client.get("/api/pairs", headers=bearer(third))).status_code == 200
        third_id = (await one.client.get("/api/users/me", headers=bearer(third))).json()["id"]
        r = await one.client.delete(f"/api/users/{third_id}", headers=bearer(admin))
        assert r.status_code == 200
        await refused_within(two.client, third, "no longer exists")


@pytest.mark.slow
async def test_a_live_stream_closes_when_its_token_is_revoked(kms_home: Path,
                                                              sim: SimServer) -> None:
    settings = settings_for(kms_home, sim.url, KMS_AUTH_ACCESS_TTL="0.5")
    async with stack(settings) as s, stack(settings, roles=("gateway",)) as other:
        admin, reader = await admin_and_reader(s)
        second = await login(s.client, READER, register=False)
        async with served(s.services) as (base, _server, _app):
            url = base.replace("http", "ws", 1) + "/api/stream/ETH-USD"
            # logged out through this gateway: closed at once
            async with connect(url, additional_headers=bearer(reader), open_timeout=5) as ws:
                await ws.recv()
                await s.client.post("/api/users/logout", headers=bearer(reader))
                code, reason = await close_of(ws, within=5)
                assert code == wire.TOKEN_REVOKED and "revoked" in reason
            # disabled through another gateway: closed within the ttl and a check interval
            async with connect(url, additional_headers=bearer(second), open_timeout=5) as ws:
                await ws.recv()
                me = (await s.client.get("/api/users/me", headers=bearer(second))).json()
                r = await other.client.post(f"/api/users/{me['id']}/disable",
                                            headers=bearer(admin))
                assert r.status_code == 200
                code, reason = await close_of(ws, within=10)
                assert code == wire.TOKEN_REVOKED and "disabled" in reason
            # a revoked token cannot open a stream either
            async with connect(url, additional_headers=bearer(reader), open_timeout=5) as ws:
                code, _ = await close_of(ws, within=5)
                assert code == wire.BAD_TOKEN


async def close_of(ws: Any, within: float) -> tuple[int | None, str]:
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    except ConnectionClosed as exc:
        return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd is not None else (None, "")


# -- proxies --------------------------------------------------------------------------------


async def failed_logins(client: httpx.AsyncClient, forwarded_for: list[str]) -> list[int]:
    """One wrong-password login per X-Forwarded-For value (each with a fresh email, so
    only the per-address count can refuse them): the statuses."""
    statuses = []
    for i, xff in enumerate(forwarded_for):
        r = await client.post("/api/users/login", headers={"X-Forwarded-For": xff},
                              json={"email": f"guess{i}@example.com", "password": "wrong one"})
        statuses.append(r.status_code)
    return statuses


ROTATED = [f"198.51.100.{i}" for i in range(1, 6)]


@pytest.mark.parametrize("trusted, peer, expected", [
    # no proxy trusted (the default): the header is ignored, the peer is counted
    ("", "203.0.113.9", [401, 401, 429, 429, 429]),
    # a peer outside the trusted networks: ignored as well
    ("10.0.0.0/8", "203.0.113.9", [401, 401, 429, 429, 429]),
    # a trusted proxy: each forwarded client is counted apart
    ("203.0.113.0/24", "203.0.113.9", [401, 401, 401, 401, 401]),
])
async def test_forwarded_for_in_process(kms_home: Path, trusted: str, peer: str,
                                        expected: list[int]) -> None:
    settings = settings_for(kms_home, KMS_AUTH_LOGIN_MAX_FAILURES="2",
                            KMS_GATEWAY_TRUSTED_PROXIES=trusted)
    async with stack(settings, roles=("gateway",)) as s:
        transport = httpx.ASGITransport(app=s.app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            assert await failed_logins(client, ROTATED) == expected


@pytest.mark.parametrize("trusted, expected", [
    ("", [401, 401, 429, 429, 429]),  # a local process cannot escape the limit any more
    ("127.0.0.1", [401, 401, 401, 401, 401]),
])
@pytest.mark.slow
async def test_forwarded_for_through_uvicorn(kms_home: Path, trusted: str,
                                             expected: list[int]) -> None:
    settings = settings_for(kms_home, KMS_AUTH_LOGIN_MAX_FAILURES="2",
                            KMS_GATEWAY_TRUSTED_PROXIES=trusted)
    async with stack(settings, roles=("gateway",)) as s, served(s.services) as (base, _, _):
        async with httpx.AsyncClient(base_url=base) as client:
            assert await failed_logins(client, ROTATED) == expected
            if trusted:  # the same forwarded client twice more: its own limit applies
                again = await failed_logins(client, [ROTATED[0]] * 2)
                assert again == [401, 429]
