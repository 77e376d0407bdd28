"""``/health`` and ``/metrics`` (gateway/operations.py)."""

from __future__ import annotations

from gateway_support import Stack, login, wait_snapshots


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
