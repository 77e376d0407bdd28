"""Shared query parameters (gateway/params.py): time windows, and the bounds that are
settings, checked per app and written into its OpenAPI document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway_support import Stack, login, settings_for, stack, wait_snapshots
from krakenstream.daemon.gateway.params import (
    HISTORY_LIMIT,
    KRAKEN_DEPTH,
    MAXIMUM_OF,
    document_maxima,
    parse_time,
)
from krakenstream.errors import InputError
from krakenstream.sim.server import SimServer
from krakenstream.wire import HINTS


@pytest.mark.slow
async def test_bad_parameters(gw: Stack) -> None:
    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw)
    cases = {
        "/api/analysis/history/ETH-USD?limit=0": "limit:",
        "/api/analysis/history/ETH-USD?limit=10001": "limit:",
        "/api/analysis/history/ETH-USD?limit=ten": "limit:",
        "/api/analysis/history/ETH-USD?order=sideways": "order:",
        "/api/analysis/history/ETH-USD?format=xml": "format:",
        "/api/analysis/history/ETH-USD?since=yesterday": "since:",
        "/api/analysis/history/ETH-USD?until=2026-13-01": "until:",
        "/api/analysis/latest/ETHUSD": "ETHUSD",
        "/api/analysis/latest/ETH%2FUSD%2FEUR": "ETH/USD/EUR",
        "/api/orderbook/ETH-USD?depth=0": "depth:",
        "/api/orderbook/ETH-USD?depth=11": "depth:",
    }
    for url, named in cases.items():
        r = await c.get(url, headers=gw.auth)
        assert r.status_code == 422, (url, r.text)
        body = r.json()
        assert body["code"] == "invalid" and named in body["error"], (url, body)
        assert "\n" not in body["error"]


@pytest.mark.slow
async def test_bounds_are_this_apps_settings(kms_home: Path, sim: SimServer) -> None:
    settings = settings_for(kms_home, sim.url, KMS_STORE_HISTORY_LIMIT="5",
                            KMS_KRAKEN_DEPTH="25")
    async with stack(settings) as gw:
        c = gw.client
        gw.token = await login(c)
        await wait_snapshots(gw, n=5)
        over = {"/api/analysis/history/ETH-USD?limit=6": "limit: Input should be less than "
                "or equal to 5",
                "/api/analysis/summary/ETH-USD?limit=6": "limit: Input should be less than "
                "or equal to 5",
                "/api/orderbook/ETH-USD?depth=26": "depth: Input should be less than or "
                "equal to 25"}
        for url, message in over.items():
            r = await c.get(url, headers=gw.auth)
            assert r.status_code == 422 and r.json() == {"error": message, "code": "invalid",
                                                         "hint": HINTS["invalid"]}
        r = await c.get("/api/analysis/history/ETH-USD?limit=5", headers=gw.auth)
        assert r.status_code == 200 and len(r.json()["snapshots"]) == 5
        r = await c.get("/api/analysis/summary/ETH-USD?limit=5", headers=gw.auth)
        assert r.status_code == 200 and r.json()["snapshots"] == 5
        r = await c.get("/api/orderbook/ETH-USD?depth=25", headers=gw.auth)
        assert r.status_code == 200 and len(r.json()["bids"]) == 25
        # below the bound, pydantic's own check answers, several parameters at once
        r = await c.get("/api/analysis/history/ETH-USD?limit=0&order=sideways",
                        headers=gw.auth)
        assert r.status_code == 422
        assert "limit:" in r.json()["error"] and "order:" in r.json()["error"]


def test_parse_time() -> None:
    assert parse_time("since", None) is None
    assert parse_time("since", "1795628858600") == 1795628858600
    assert parse_time("since", "2026-11-25T17:00:00Z") == 1795626000000
    assert parse_time("since", "2026-11-25T17:00:00.250Z") == 1795626000250
    assert parse_time("since", "2026-11-25T18:00:00+01:00") == 1795626000000
    assert parse_time("since", "2026-11-25T17:00:00") == 1795626000000  # naive = UTC
    assert parse_time("since", "1795626000") == 1795626000000  # epoch seconds
    with pytest.raises(InputError, match="since: expected ISO 8601") as info:
        parse_time("since", "last tuesday")
    assert info.value.hint == ("e.g. since=2025-11-25T17:00:00Z, since=1764090000000 (epoch "
                               "ms) or since=1764090000 (epoch s)")


def test_document_maxima_writes_the_bound_where_pydantic_would() -> None:
    def param(name: str, setting: str | None) -> dict[str, Any]:
        schema: dict[str, Any] = {"anyOf": [{"type": "integer", "minimum": 1},
                                            {"type": "null"}], "title": name.title()}
        if setting is not None:
            schema[MAXIMUM_OF] = setting
        return {"name": name, "in": "query", "schema": schema}

    doc = {"paths": {"/a": {"get": {"parameters": [param("limit", HISTORY_LIMIT),
                                                   param("depth", KRAKEN_DEPTH),
                                                   param("other", None)]}}}}
    document_maxima(doc, {HISTORY_LIMIT: 7, KRAKEN_DEPTH: 10})
    limit, depth, other = doc["paths"]["/a"]["get"]["parameters"]
    assert limit["schema"] == {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 7},
                                         {"type": "null"}], "title": "Limit"}
    assert depth["schema"]["anyOf"][0]["maximum"] == 10
    assert "maximum" not in other["schema"]["anyOf"][0]
