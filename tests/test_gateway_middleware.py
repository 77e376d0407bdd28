"""Around every request (gateway/middleware.py): the body limit, one log line without
secrets, bounded metric labels, a bug answered as a logged 500."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from gateway_support import EMAIL, PASSWORD, Stack, login
from krakenstream.wire import HINTS


@pytest.mark.slow
async def test_body_size_limit(gw: Stack) -> None:
    big = {"email": EMAIL, "password": "x" * 70_000}
    r = await gw.client.post("/api/users/register", json=big)
    assert r.status_code == 413
    assert r.json() == {"error": "the request body is larger than 65536 bytes",
                        "code": "too_large", "hint": HINTS["too_large"]}

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        yield b'{"email": "a@example.com", "password": "'
        for _ in range(20):
            yield b"y" * 4096
        yield b'"}'

    r = await gw.client.post("/api/users/login", content=chunked(),
                             headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "too_large"


@pytest.mark.slow
async def test_odd_methods_share_one_metric_label(gw: Stack) -> None:
    # a label value per method a client invents would grow the registry without bound
    for i in range(5):
        r = await gw.client.request(f"BREW{i}", "/health")
        assert r.status_code == 405
    text = (await gw.client.get("/metrics")).text
    assert "BREW" not in text
    assert 'kms_http_requests_total{method="OTHER",route="/health",status="405"} 5.0' in text


@pytest.mark.slow
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


@pytest.mark.slow
async def test_a_path_cannot_forge_a_log_line(gw: Stack, caplog: pytest.LogCaptureFixture
                                              ) -> None:
    caplog.set_level(logging.INFO)
    r = await gw.client.get("/nothing%0Ahttp%20method=GET%20path=/forged%20status=200")
    assert r.status_code == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "krakenstream.gateway"]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert "path=/nothing%0Ahttp%20method=GET%20path=/forged%20status=200 status=404" in lines[0]


@pytest.mark.slow
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
    assert r.json() == {"error": "internal error", "code": "internal", "hint": HINTS["internal"]}
    failed = [rec for rec in caplog.records if rec.getMessage().startswith("request failed")]
    assert failed and failed[0].exc_info is not None  # with its traceback
    assert any("path=/api/pairs status=500" in rec.getMessage() for rec in caplog.records)
    r = await gw.client.get("/api/users/me", headers=gw.auth)  # and the app goes on
    assert r.status_code == 200

