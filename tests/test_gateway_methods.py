"""HEAD and OPTIONS on every path, and the Allow header (gateway/methods.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway_support import Stack, login, sample_snapshot, settings_for, stack


@pytest.fixture
async def bare(kms_home: Path) -> AsyncIterator[Stack]:
    """The gateway alone (no feed): enough for what every route answers alike."""
    async with stack(settings_for(kms_home), roles=("gateway",)) as s:
        s.token = await login(s.client)
        yield s


async def test_head_is_answered_wherever_get_is(bare: Stack) -> None:
    c = bare.client
    r = await c.head("/health")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-type"] == "application/json"
    r = await c.head("/api/users/me", headers=bare.auth)
    assert r.status_code == 200 and r.content == b""
    r = await c.head("/api/users/me")
    assert r.status_code == 401 and r.content == b""
    r = await c.head("/openapi.json")
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) > 1000  # what GET would send
    # a route without GET: 405, naming what it allows
    r = await c.head("/api/users/login")
    assert r.status_code == 405
    # POST /api/users/login, and DELETE /api/users/{user_id}, whose path matches it too
    assert r.headers["allow"] == "DELETE, OPTIONS, POST"


async def test_head_of_a_streamed_export_answers_its_headers_only(bare: Stack) -> None:
    store = bare.services.store
    assert store is not None
    await store.add([sample_snapshot(1_764_000_000_000 + i * 1000) for i in range(50)])
    r = await bare.client.head("/api/analysis/history/ETH-USD?format=csv", headers=bare.auth)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-type"].startswith("text/csv")


async def test_options_and_405_list_every_method_of_the_path(bare: Stack) -> None:
    c = bare.client
    r = await c.options("/api/pairs")
    assert r.status_code == 204
    assert r.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    r = await c.options("/api/pairs/ETH-USD")
    assert r.status_code == 204 and r.headers["allow"] == "DELETE, OPTIONS"
    r = await c.put("/api/pairs")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert r.json()["error"] == "PUT is not allowed on /api/pairs"
    assert r.json()["code"] == "invalid"
    r = await c.options("/nowhere")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
