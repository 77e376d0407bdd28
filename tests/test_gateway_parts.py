"""The gateway's parts on their own: the verified-token cache, the latest cache, CSV lines,
the WebSocket backlog policy, the token offered as a subprotocol (the error table is tested
in test_wire.py)."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from datetime import UTC, datetime

import pytest

from gateway_support import sample_snapshot
from krakenstream.bus.memory import MemoryBus
from krakenstream.core.snapshot import Snapshot
from krakenstream.daemon.gateway.exports import csv_chunk
from krakenstream.daemon.gateway.hub import LatestCache, StreamHub
from krakenstream.daemon.gateway.logs import RedactTokens
from krakenstream.daemon.gateway.stream import subprotocol_token
from krakenstream.daemon.gateway.tokens import VerifiedTokens
from krakenstream.daemon.metrics import Metrics
from krakenstream.errors import (
    AuthError,
    BackendUnavailable,
)
from krakenstream.users.tokens import Claims
from krakenstream.wire import TOO_SLOW


def test_verified_tokens_kept_until_expiry_and_bounded() -> None:
    now = [1_000.0]
    calls: list[str] = []

    def verify(token: str) -> Claims:
        calls.append(token)
        if token.startswith("bad"):
            raise AuthError("token signature is invalid")
        return Claims(user_id=len(token), email="a@example.com",
                      expires_at=datetime.fromtimestamp(1_010, UTC))

    cache = VerifiedTokens(verify, size=2, clock=lambda: now[0])
    assert cache.verify("t1").user_id == 2
    assert cache.verify("t1").user_id == 2
    assert calls == ["t1"]  # the second check was the kept verdict
    for _ in range(2):  # refusals are never kept
        with pytest.raises(AuthError):
            cache.verify("bad")
    assert calls == ["t1", "bad", "bad"]
    cache.verify("t2")
    cache.verify("t3")  # over the size: t1, least recently used, is dropped
    cache.verify("t1")
    assert calls[-1] == "t1" and len(calls) == 6
    now[0] = 1_010.0  # expired: verified afresh (and the codec decides)
    cache.verify("t1")
    assert len(calls) == 7


async def test_latest_cache_shares_reads_and_drops_on_newer_snapshot() -> None:
    bus = MemoryBus()
    hub = StreamHub(bus, Metrics(), backlog=4)
    cache = LatestCache(hub, ttl=60.0)
    stored = [sample_snapshot(ts=1_000)]
    reads = 0

    async def read() -> Snapshot | None:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)
        return stored[-1]

    bodies = await asyncio.gather(*(cache.get("ETH/USD", read) for _ in range(10)))
    assert reads == 1 and len(set(bodies)) == 1
    assert await cache.get("ETH/USD", read) == stored[0].to_json() and reads == 1
    # the tap saw a newer snapshot: the next answer reads the store again
    stored.append(sample_snapshot(ts=2_000))
    hub.latest["ETH/USD"] = stored[-1]
    assert await cache.get("ETH/USD", read) == stored[-1].to_json() and reads == 2

    async def nothing() -> Snapshot | None:
        return None

    assert await cache.get("BTC/USD", nothing) is None
    assert "BTC/USD" not in cache._entries  # absent pairs are not kept

    async def down() -> Snapshot | None:
        raise BackendUnavailable("store down")

    with pytest.raises(BackendUnavailable):
        await cache.get("XRP/USD", down)


def test_csv_lines_quote_what_needs_quoting() -> None:
    plain = sample_snapshot(ts=1_000)
    odd = Snapshot(pair="ETH/USD", ts=2_000, exchange_ts='2026-11-25 "x", y', seq=2,
                   price_precision=2, qty_precision=8, bids=plain.bids, asks=plain.asks,
                   checksum=1)
    text = csv_chunk([plain.to_json(), b"not json", odd.to_json()]).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [plain.csv_row(), odd.csv_row()]  # the bad record is skipped


async def test_slow_client_is_cut_off_others_kept() -> None:
    hub = StreamHub(MemoryBus(), Metrics(), backlog=3)
    slow, fast = hub.add("ETH/USD"), hub.add("ETH/USD")
    other = hub.add("BTC/USD")
    for i in range(3):
        hub.publish("ETH/USD", f"m{i}")
        assert await fast.next() == f"m{i}"
    assert hub.client_count == 3 and hub.cut_off == 0
    hub.publish("ETH/USD", "m3")  # slow's fourth unread message: over its backlog
    assert slow.close_code == TOO_SLOW and not slow.items  # its backlog is freed at once
    assert hub.cut_off == 1 and hub.client_count == 2
    assert await slow.next() is None
    assert await fast.next() == "m3"
    assert other.close_code is None and not other.items
    hub.close_all(1001, "server shutting down")
    assert fast.close_code == 1001 and other.close_code == 1001


@pytest.mark.parametrize("query", ["token=SECRET", "TOKEN=SECRET", "a=1&token=SECRET&b=2",
                                   "%74oken=SECRET", "to%6Ben=SECRET", "tok%65n=SECRET&x=1"])
def test_a_token_in_a_logged_query_is_redacted_however_spelled(query: str) -> None:
    # Starlette decodes the name before looking up "token", so every spelling authenticates
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1,
                               '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5000", f"/api/stream/ETH-USD?{query}"), None)
    assert RedactTokens().filter(record)
    text = record.getMessage()
    assert "SECRET" not in text and "=***" in text and "/api/stream/ETH-USD?" in text


@pytest.mark.parametrize(("offered", "token"), [
    ([], None),
    (["chat", "superchat"], None),
    (["kms.bearer", "a.b.c"], "a.b.c"),
    (["chat", "kms.bearer", "a.b.c", "more"], "a.b.c"),
    (["kms.bearer"], ""),  # offered with nothing after it: refused as a bad token
    (["KMS.BEARER", "a.b.c"], None),  # subprotocol names are case-sensitive (RFC 6455)
])
def test_the_token_offered_as_a_subprotocol(offered: list[str], token: str | None) -> None:
    assert subprotocol_token(offered) == token


@pytest.mark.parametrize("line", [
    "< authorization: Bearer aaa.bbb.ccc",
    "< Sec-WebSocket-Protocol: kms.bearer, aaa.bbb.ccc",
    "> sec-websocket-protocol:kms.bearer,aaa.bbb.ccc",
])
def test_a_token_in_a_logged_header_is_redacted(line: str) -> None:
    record = logging.LogRecord("uvicorn.error", logging.DEBUG, __file__, 1, "%s", (line,), None)
    assert RedactTokens().filter(record)
    assert "aaa.bbb.ccc" not in record.getMessage()
    assert record.getMessage().endswith(" ***")
