"""Helpers of the gateway tests: a real stack (simulator, stores, bus) with the app in front,
reached in-process through httpx's ASGI transport or over loopback through uvicorn.

Its fixtures (``sim``, ``gw``) reach every test module through ``pytest_plugins`` in
``conftest.py``; a module may define its own ``sim`` (another set of pairs) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from conftest import free_port
from krakenstream.config import Settings, load_settings
from krakenstream.core.snapshot import Snapshot
from krakenstream.daemon.gateway import GatewayServer, create_app, make_server
from krakenstream.daemon.services import Services, build_services
from krakenstream.sim.server import SimServer

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"
ROLES = ("orderbook", "analysis", "gateway")


def settings_for(home: Path, sim_url: str | None = None, **env: str) -> Settings:
    """Settings for one test: its own KMS_HOME, a fast snapshot tick, cheap bcrypt."""
    base = {
        "KMS_HOME": str(home),
        "KMS_KRAKEN_PAIRS": "ETH/USD",
        "KMS_KRAKEN_SNAPSHOT_INTERVAL": "0.2",
        "KMS_AUTH_BCRYPT_COST": "4",
    }
    if sim_url is not None:
        base["KMS_KRAKEN_URL"] = sim_url
    base.update(env)
    return load_settings(env=base)


@dataclass
class Stack:
    services: Services
    app: FastAPI
    client: httpx.AsyncClient
    token: str | None = None

    @property
    def auth(self) -> dict[str, str]:
        assert self.token is not None
        return {"Authorization": f"Bearer {self.token}"}


@contextlib.asynccontextmanager
async def stack(settings: Settings, roles: Sequence[str] = ROLES) -> AsyncIterator[Stack]:
    """Services built for real, the app's lifespan running, an ASGI client in front."""
    services = await build_services(settings, roles)
    try:
        app = create_app(services)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                yield Stack(services, app, client)
    finally:
        await services.close()


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    """The exchange: ETH/USD (tracked by ``settings_for``) and BTC/USD (to track)."""
    async with SimServer(pairs=["ETH/USD", "BTC/USD"], seed=1) as server:
        yield server


@pytest.fixture
async def gw(kms_home: Path, sim: SimServer) -> AsyncIterator[Stack]:
    """The embedded stack over ``sim``, every role, the app in front (in-process)."""
    async with stack(settings_for(kms_home, sim.url)) as s:
        yield s


async def login(client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD,
                *, register: bool = True) -> str:
    if register:
        r = await client.post("/api/users/register", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
    r = await client.post("/api/users/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 10.0,
                     every: float = 0.05) -> Any:
    """The first truthy result of ``check()``, or AssertionError after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(every)


async def wait_snapshots(s: Stack, pair: str = "ETH-USD", n: int = 1,
                         within: float = 10.0) -> None:
    """Until the store holds at least ``n`` snapshots of ``pair``."""
    name = pair.replace("-", "/")
    store = s.services.store
    assert store is not None

    async def enough() -> bool:
        return await store.count(name) >= n

    await eventually(enough, within)


@contextlib.asynccontextmanager
async def served(services: Services) -> AsyncIterator[tuple[str, GatewayServer, FastAPI]]:
    """A second gateway app over the same services on uvicorn on a free loopback port (its
    own lifespan and bus tap): yields (base URL, server, app)."""
    port = free_port()
    app = create_app(services)
    server = make_server(services, host="127.0.0.1", port=port, app=app)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        assert server.started, "uvicorn did not start within 5 s"
        yield f"http://127.0.0.1:{port}", server, app
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=10)


def sample_snapshot(ts: int, pair: str = "ETH/USD", levels: int = 10) -> Snapshot:
    """A plausible book of ``levels`` per side, prices in cents, quantities in 1e-8."""
    bids = tuple((350_000 - i * 3, 100_000_000 + i * 7_919) for i in range(levels))
    asks = tuple((350_001 + i * 3, 90_000_000 + i * 6_007) for i in range(levels))
    return Snapshot(pair=pair, ts=ts, exchange_ts="2026-11-25T17:00:00.123456Z", seq=1,
                    price_precision=2, qty_precision=8, bids=bids, asks=asks,
                    checksum=123456789)
