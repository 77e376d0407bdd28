"""Every error as JSON (gateway/errors.py): our errors by the table in wire.py, the
framework's own answers (no route, wrong method, an unreadable body) in the same shape."""

from __future__ import annotations

import pytest

from gateway_support import EMAIL, PASSWORD, Stack, login, wait_snapshots
from krakenstream.wire import HINTS


@pytest.mark.slow
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
                "deeply)", "code": "invalid", "hint": HINTS["invalid"]}
    assert r.json() == expected
    r = await c.post("/api/users/login", content=b"[" * 60_000, headers=json)
    assert r.status_code == 422 and r.json() == expected


@pytest.mark.slow
async def test_unknown_pairs_routes_and_methods(gw: Stack) -> None:
    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw)
    for url in ("/api/analysis/latest/DOGE-USD", "/api/analysis/history/DOGE-USD",
                "/api/orderbook/DOGE-USD"):
        r = await c.get(url, headers=gw.auth)
        assert r.status_code == 404 and "DOGE/USD" in r.json()["error"], url
    r = await c.get("/api/nothing/here")
    assert r.status_code == 404 and r.json() == {
        "error": "no such route: GET /api/nothing/here", "code": "not_found",
        "hint": HINTS["not_found"]}
    r = await c.put("/api/users/me")
    assert r.status_code == 405 and r.json()["code"] == "invalid"


@pytest.mark.slow
async def test_every_error_answer_carries_a_hint(gw: Stack) -> None:
    """troubleshooting.md: over HTTP every error is {"error", "code", "hint"}."""
    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw)
    asked = [
        ("GET", "/api/analysis/history/ETH-USD?since=yesterday", None, True),
        ("GET", "/api/analysis/history/ETH-USD?limit=0", None, True),
        ("GET", "/api/analysis/latest/ETHUSD", None, True),
        ("GET", "/api/analysis/latest/DOGE-USD", None, True),
        ("GET", "/api/orderbook/DOGE-USD", None, True),
        ("GET", "/api/nothing/here", None, False),
        ("PUT", "/api/users/me", None, False),
        ("GET", "/api/users/me", None, False),
        ("POST", "/api/users/login", {"email": EMAIL, "password": "wrong password"}, False),
        ("POST", "/api/users/register", {"email": EMAIL, "password": PASSWORD}, False),
        ("POST", "/api/users/register", {"email": "x@example.com", "password": "short"}, False),
        ("POST", "/api/users/register", {"email": "x@example.com"}, False),
        ("POST", "/api/pairs", {"pair": "ETH/USD"}, True),
        ("POST", "/api/pairs", {"pair": "NOSLASH"}, True),
        ("DELETE", "/api/pairs/XRP-JPY", None, True),
        ("POST", "/api/users/register", {"email": "a", "password": "x" * 70_000}, False),
    ]
    statuses = set()
    for method, url, body, auth in asked:
        r = await c.request(method, url, json=body, headers=gw.auth if auth else {})
        assert r.status_code >= 400, (method, url)
        answer = r.json()
        assert set(answer) == {"error", "code", "hint"}, (method, url, answer)
        assert answer["hint"].strip(), (method, url)
        statuses.add(r.status_code)
    assert statuses >= {401, 404, 405, 409, 413, 422}
