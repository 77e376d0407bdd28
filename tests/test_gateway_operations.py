"""``/health`` and ``/metrics`` (gateway/operations.py)."""

from __future__ import annotations

from gateway_support import Stack, login, wait_snapshots
from krakenstream.config import KrakenSettings
from krakenstream.daemon.gateway.operations import HEALTH_PAIR_PROBLEMS, HEALTH_PAIRS, feed_health
from krakenstream.daemon.refused import RefusedPairs
from krakenstream.feed.status import ConnectionStatus, PairState, PairStatus


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


def test_feed_health_sums_up_connections_and_caps_the_problems() -> None:
    """Thousands of pairs and several connections: one line per connection down, at most
    20 pairs named, the rest counted; the summed-up ``connection`` keeps its fields."""
    class Role:
        settings = KrakenSettings()
        refused = RefusedPairs(60.0)

        class feed:  # noqa: N801 - stands for the role's FeedPool
            over_max_pairs = 0

        def connection(self) -> ConnectionStatus:
            return ConnectionStatus(url="ws://127.0.0.1:1/v2", name="pool", connected=False,
                                    pairs=3000)

        def connections(self) -> list[ConnectionStatus]:
            up = ConnectionStatus(url="ws://127.0.0.1:1/v2", name="1", state="connected",
                                  connected=True, pairs=200)
            down = ConnectionStatus(url="ws://127.0.0.1:1/v2", name="2", state="waiting",
                                    pairs=200, last_error="connection closed: 1006")
            return [up, down]

        def status(self) -> dict[str, PairStatus]:
            return {f"P{i:04d}/USD": PairStatus(f"P{i:04d}/USD", state=(
                PairState.STALE if i < 200 else PairState.LIVE)) for i in range(3000)}

    feed, problems = feed_health(Role())  # type: ignore[arg-type]
    assert feed["states"] == {"stale": 200, "live": 2800}
    assert [c["name"] for c in feed["connections"]] == ["1", "2"]
    assert feed["connection"]["connected"] is False
    # a probe's answer stays small: 50 pairs (those not live), the rest counted
    assert len(feed["pairs"]) == HEALTH_PAIRS and feed["pairs_omitted"] == 3000 - HEALTH_PAIRS
    assert all(p["state"] == "stale" for p in feed["pairs"].values())
    assert problems[:2] == ["feed: not connected",
                            "feed: connection 2 is waiting (connection closed: 1006)"]
    named = [p for p in problems if p.endswith(" is stale")]
    assert len(named) == HEALTH_PAIR_PROBLEMS
    assert problems[-1] == "feed: 180 more pairs not live (200 of 3000)"
