"""The gateway in-process (httpx ASGI transport) on the embedded stack: the simulator as the
exchange, SQLite history and users, the in-process bus; every route and error status."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from gateway_support import (
    EMAIL,
    PASSWORD,
    Stack,
    eventually,
    login,
    sample_snapshot,
    settings_for,
    stack,
    wait_snapshots,
)
from krakenstream.core.snapshot import CSV_COLUMNS, Snapshot
from krakenstream.daemon.gateway.exports import csv_fields
from krakenstream.daemon.gateway.params import parse_time
from krakenstream.errors import InputError
from krakenstream.sim.server import SimServer


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(pairs=["ETH/USD", "BTC/USD"], seed=1) as server:
        yield server


@pytest.fixture
async def gw(kms_home: Path, sim: SimServer) -> AsyncIterator[Stack]:
    async with stack(settings_for(kms_home, sim.url)) as s:
        yield s


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


async def test_text_that_is_not_unicode_is_422_not_500(gw: Stack) -> None:
    c = gw.client
    await login(c)
    json = {"Content-Type": "application/json"}
    # a lone surrogate: valid JSON, but no UTF-8 (nor bcrypt) can take it
    lone = b'"password": "\\ud800 correct horse"}'
    r = await c.post("/api/users/register", content=b'{"email": "b@example.com", ' + lone,
                     headers=json)
    assert r.status_code == 422 and "surrogate" in r.json()["error"], r.text
    r = await c.post("/api/users/login", content=b'{"email": "%s", ' % EMAIL.encode() + lone,
                     headers=json)
    assert r.status_code == 401 and r.json()["error"] == "invalid email or password", r.text
    r = await c.post("/api/users/login", content=b'{"email": "\xff\xfe", "password": "x"}',
                     headers=json)
    assert r.status_code == 422, r.text
    expected = {"error": "the request body cannot be read as JSON (not UTF-8, or nested too "
                "deeply)", "code": "invalid"}
    assert r.json() == expected
    r = await c.post("/api/users/login", content=b"[" * 60_000, headers=json)
    assert r.status_code == 422 and r.json() == expected


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


async def test_bad_parameters_and_unknown_things(gw: Stack) -> None:
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
    for url in ("/api/analysis/latest/DOGE-USD", "/api/analysis/history/DOGE-USD",
                "/api/orderbook/DOGE-USD"):
        r = await c.get(url, headers=gw.auth)
        assert r.status_code == 404 and "DOGE/USD" in r.json()["error"], url
    r = await c.get("/api/nothing/here")
    assert r.status_code == 404 and r.json() == {
        "error": "no such route: GET /api/nothing/here", "code": "not_found"}
    r = await c.put("/api/users/me")
    assert r.status_code == 405 and r.json()["code"] == "invalid"


async def test_body_size_limit(gw: Stack) -> None:
    big = {"email": EMAIL, "password": "x" * 70_000}
    r = await gw.client.post("/api/users/register", json=big)
    assert r.status_code == 413
    assert r.json() == {"error": "the request body is larger than 65536 bytes",
                        "code": "too_large"}

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        yield b'{"email": "a@example.com", "password": "'
        for _ in range(20):
            yield b"y" * 4096
        yield b'"}'

    r = await gw.client.post("/api/users/login", content=chunked(),
                             headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "too_large"


async def test_history_formats_carry_the_same_snapshots(gw: Stack) -> None:
    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw, n=6)
    q = "order=asc&limit=5"
    as_json = (await c.get(f"/api/analysis/history/ETH-USD?{q}", headers=gw.auth)).json()
    r = await c.get(f"/api/analysis/history/ETH%2FUSD?{q}&format=ndjson", headers=gw.auth)
    assert r.headers["content-type"] == "application/x-ndjson"
    as_ndjson = [orjson.loads(line) for line in r.text.splitlines()]
    r = await c.get(f"/api/analysis/history/eth-usd?{q}&format=csv", headers=gw.auth)
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="ETH-USD.csv"'
    rows = list(csv.reader(io.StringIO(r.text)))

    assert as_json["order"] == "asc" and len(as_json["snapshots"]) == 5
    assert as_ndjson == as_json["snapshots"]
    assert rows[0] == CSV_COLUMNS
    assert rows[1:] == [Snapshot.from_dict(d).csv_row() for d in as_json["snapshots"]]
    ts = [d["ts"] for d in as_json["snapshots"]]
    assert ts == sorted(ts)

    # since/until: epoch ms and ISO 8601 (Z or an offset) select the same window
    lo, hi = ts[1], ts[3]
    iso_lo = as_json["snapshots"][1]["time"]
    iso_hi = as_json["snapshots"][3]["time"].replace("Z", "+00:00")
    for since, until in ((lo, hi), (iso_lo, iso_hi)):
        r = await c.get("/api/analysis/history/ETH-USD", headers=gw.auth,
                        params={"since": since, "until": until, "order": "asc"})
        assert [d["ts"] for d in r.json()["snapshots"]] == ts[1:4]
    # an empty window of a known pair is an empty list, not a 404
    r = await c.get("/api/analysis/history/ETH-USD?since=0&until=1&format=ndjson",
                    headers=gw.auth)
    assert r.status_code == 200 and r.text == ""
    r = await c.get("/api/analysis/history/ETH-USD?since=0&until=1", headers=gw.auth)
    assert r.json() == {"pair": "ETH/USD", "order": "desc", "snapshots": []}


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


async def test_track_and_untrack_pairs(gw: Stack) -> None:
    c = gw.client
    gw.token = await login(c)
    r = await c.post("/api/pairs", json={"pair": "btc-usd"})
    assert r.status_code == 401
    r = await c.post("/api/pairs", json={"pair": "btc-usd"}, headers=gw.auth)
    assert r.status_code == 202 and r.json()["pair"] == "BTC/USD"
    assert r.json()["state"] in ("connecting", "live")
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
    assert r.status_code == 200 and r.json() == {"pair": "BTC/USD", "state": "untracked"}
    r = await c.delete("/api/pairs/BTC-USD", headers=gw.auth)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    pairs = (await c.get("/api/pairs", headers=gw.auth)).json()["pairs"]
    assert [p["pair"] for p in pairs] == ["ETH/USD"]


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
        await asyncio.sleep(0.1)

        async def stale() -> object:
            r = await c.get("/api/orderbook/BTC-USD", headers=gw.auth)
            return r if r.status_code == 503 else None

        r = await eventually(stale, within=5)
        assert "stale" in r.json()["error"]


async def test_store_closed_is_503_and_health_degraded(gw: Stack) -> None:
    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw)
    health = (await c.get("/health")).json()
    assert health["status"] == "ok", health
    assert health["feed"]["pairs"]["ETH/USD"]["state"] == "live"
    assert health["store"] == {"backend": "sqlite", "healthy": True}
    assert health["bus"]["backend"] == "memory" and health["bus"]["published"] >= 1

    assert gw.services.history_writer is not None and gw.services.store is not None
    await gw.services.history_writer.stop(drain=False)
    await gw.services.store.close()
    for url in ("/api/analysis/latest/ETH-USD", "/api/analysis/history/ETH-USD",
                "/api/pairs"):
        r = await c.get(url, headers=gw.auth)
        assert r.status_code == 503, (url, r.text)
        assert r.json()["code"] == "unavailable" and "history database" in r.json()["error"]
    health = (await c.get("/health")).json()
    assert health["status"] == "degraded"
    assert health["store"]["healthy"] is False
    assert any("store" in p for p in health["problems"])


async def test_metrics(gw: Stack) -> None:
    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw, n=2)
    await c.get("/api/analysis/latest/ETH%2FUSD", headers=gw.auth)
    await c.get("/api/analysis/latest/ETH-USD")
    text = (await c.get("/metrics")).text
    assert ('kms_http_requests_total{method="GET",route="/api/analysis/latest/{pair}",'
            'status="200"} 1.0') in text
    assert ('kms_http_requests_total{method="GET",route="/api/analysis/latest/{pair}",'
            'status="401"} 1.0') in text
    for name in ('kms_feed_frames{pair="ETH/USD"}', "kms_feed_checksum_mismatches",
                 "kms_feed_resyncs", "kms_feed_reconnects", "kms_snapshots_published_total",
                 "kms_snapshots_stored_total", "kms_publish_to_store_seconds_bucket",
                 "kms_bus_published", "kms_http_request_seconds_bucket", "kms_ws_clients"):
        assert name in text, name


async def test_odd_methods_share_one_metric_label(gw: Stack) -> None:
    # a label value per method a client invents would grow the registry without bound
    for i in range(5):
        r = await gw.client.request(f"BREW{i}", "/health")
        assert r.status_code == 405
    text = (await gw.client.get("/metrics")).text
    assert "BREW" not in text
    assert 'kms_http_requests_total{method="OTHER",route="/health",status="405"} 5.0' in text


async def test_logs_one_line_per_request_without_secrets(
    gw: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    c = gw.client
    token = await login(c)
    await c.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    await c.get(f"/api/users/me?token={token}")
    lines = [r.getMessage() for r in caplog.records if r.name == "krakenstream.gateway"]
    requests = [line for line in lines if line.startswith("http ")]
    assert len(requests) == 4
    assert "method=GET path=/api/users/me status=200" in requests[2]
    assert requests[2].endswith("user=1") and "ms=" in requests[2]
    assert requests[3].endswith("user=-") and "status=401" in requests[3]
    # everything the server side logged (the test's own httpx client logs its URLs)
    server_text = "\n".join(r.getMessage() for r in caplog.records if r.name != "httpx")
    assert token.split(".")[2] not in server_text and PASSWORD not in server_text


async def test_a_path_cannot_forge_a_log_line(gw: Stack, caplog: pytest.LogCaptureFixture
                                              ) -> None:
    caplog.set_level(logging.INFO)
    r = await gw.client.get("/nothing%0Ahttp%20method=GET%20path=/forged%20status=200")
    assert r.status_code == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "krakenstream.gateway"]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert "path=/nothing%0Ahttp%20method=GET%20path=/forged%20status=200 status=404" in lines[0]


async def test_logins_do_not_stall_other_requests(kms_home: Path, sim: SimServer) -> None:
    """bcrypt runs off the event loop: requests keep flowing while logins hash."""
    async with stack(settings_for(kms_home, sim.url, KMS_AUTH_BCRYPT_COST="11")) as gw:
        c = gw.client
        gw.token = await login(c)
        await wait_snapshots(gw)
        started = time.perf_counter()
        await login(c, register=False)
        one_login = time.perf_counter() - started

        latencies: list[float] = []
        logins = [asyncio.create_task(login(c, register=False)) for _ in range(4)]
        while not all(t.done() for t in logins):
            t0 = time.perf_counter()
            r = await c.get("/api/analysis/latest/ETH-USD", headers=gw.auth)
            assert r.status_code == 200
            latencies.append(time.perf_counter() - t0)
        await asyncio.gather(*logins)
        latencies.sort()
        # four logins take several login times; meanwhile plenty of requests were answered,
        # none of them waiting for a whole bcrypt run
        assert len(latencies) >= 10, (len(latencies), one_login)
        assert latencies[len(latencies) // 2] < one_login / 2, (latencies, one_login)


def test_parse_time() -> None:
    assert parse_time("since", None) is None
    assert parse_time("since", "1795628858600") == 1795628858600
    assert parse_time("since", "2026-11-25T17:00:00Z") == 1795626000000
    assert parse_time("since", "2026-11-25T17:00:00.250Z") == 1795626000250
    assert parse_time("since", "2026-11-25T18:00:00+01:00") == 1795626000000
    assert parse_time("since", "2026-11-25T17:00:00") == 1795626000000  # naive = UTC
    with pytest.raises(InputError, match="since: expected ISO 8601"):
        parse_time("since", "last tuesday")


def test_csv_fast_path_matches_csv_row() -> None:
    snap = sample_snapshot(ts=1795626000000)
    assert csv_fields(snap.to_json()) == snap.csv_row()
    gap = Snapshot(**{**_fields(snap), "gap_before": True, "exchange_ts": None})
    assert csv_fields(gap.to_json()) == gap.csv_row()
    # a record of another shape goes the authoritative way, or fails as malformed
    legacy = snap.to_dict()
    del legacy["time"]
    assert csv_fields(orjson.dumps(legacy)) == snap.csv_row()
    with pytest.raises(ValueError):
        csv_fields(b'{"schema": 1}')


def _fields(snap: Snapshot) -> dict[str, object]:
    return {name: getattr(snap, name) for name in Snapshot.__slots__}



async def test_a_bug_is_a_logged_500(
    gw: Stack, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw.token = await login(gw.client)
    assert gw.services.store is not None

    async def broken(pair: str) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(gw.services.store, "count", broken)
    caplog.set_level(logging.INFO)
    r = await gw.client.get("/api/pairs", headers=gw.auth)
    assert r.status_code == 500
    assert r.json() == {"error": "internal error", "code": "internal"}
    failed = [rec for rec in caplog.records if rec.getMessage().startswith("request failed")]
    assert failed and failed[0].exc_info is not None  # with its traceback
    assert any("path=/api/pairs status=500" in rec.getMessage() for rec in caplog.records)
    r = await gw.client.get("/api/users/me", headers=gw.auth)  # and the app goes on
    assert r.status_code == 200


async def test_summary_over_the_stored_window(gw: Stack) -> None:
    from krakenstream.core.analysis import SeriesSummary

    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw, n=6)
    stored = (await c.get("/api/analysis/history/ETH-USD?order=asc",
                          headers=gw.auth)).json()["snapshots"]
    window = stored[1:5]
    params = {"since": window[0]["ts"], "until": window[-1]["time"]}
    r = await c.get("/api/analysis/summary/ETH-USD", headers=gw.auth, params=params)
    assert r.status_code == 200, r.text
    acc = SeriesSummary()
    for d in window:
        acc.add_dict(d)
    assert r.json() == acc.result()
    assert r.json()["snapshots"] == 4 and r.json()["pair"] == "ETH/USD"
    # limit counts from the newest end
    r = await c.get("/api/analysis/summary/eth-usd?limit=2", headers=gw.auth)
    assert r.status_code == 200 and r.json()["snapshots"] == 2
    r = await c.get("/api/analysis/summary/ETH-USD")
    assert r.status_code == 401
    r = await c.get("/api/analysis/summary/NOPE-USD", headers=gw.auth)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await c.get("/api/analysis/summary/ETH-USD?limit=0", headers=gw.auth)
    assert r.status_code == 422
    r = await c.get("/api/analysis/summary/ETH-USD?since=0&until=1", headers=gw.auth)
    assert r.status_code == 200 and r.json()["snapshots"] == 0
