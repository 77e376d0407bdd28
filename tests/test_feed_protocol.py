"""What the client puts on the wire, and how it reads answers the simulator never gives.

A scripted loopback server records every request with its arrival time and answers as told:
this checks batching, pacing, instrument-first, the depth on unsubscribe, and acks matched
by ``req_id`` (an error naming no symbol, an unsubscribe error that says ``subscribe``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from krakenstream.feed import FeedClient, PairState

Answer = Callable[[dict[str, Any]], list[dict[str, Any]] | None]


class Scripted:
    """Acks every symbol unless ``answer`` returns its own frames for a request."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, dict[str, Any]]] = []
        self.answer: Answer = lambda req: None
        self.url = ""

    async def handler(self, ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send('{"channel":"status","type":"update","data":[{"system":"online"}]}')
            async for raw in ws:
                req = orjson.loads(raw)
                self.requests.append((time.monotonic(), req))
                for frame in self.answer(req) or self.default(req):
                    await ws.send(orjson.dumps(frame).decode())

    def default(self, req: dict[str, Any]) -> list[dict[str, Any]]:
        method, params = req.get("method"), req.get("params", {})
        if method == "ping":
            return [{"method": "pong", "req_id": req["req_id"]}]
        if params.get("channel") == "instrument":
            return [{"method": "subscribe", "req_id": req["req_id"], "success": True,
                     "result": {"channel": "instrument"}},
                    {"channel": "instrument", "type": "snapshot",
                     "data": {"assets": [], "pairs": []}}]
        return [{"method": method, "req_id": req["req_id"], "success": True,
                 "result": {"channel": "book", "depth": params["depth"], "symbol": s}}
                for s in params["symbol"]]

    def book_requests(self, method: str = "subscribe") -> list[tuple[float, dict[str, Any]]]:
        return [(t, r) for t, r in self.requests
                if r.get("method") == method and r["params"]["channel"] == "book"]


@pytest.fixture
async def server() -> AsyncIterator[Scripted]:
    scripted = Scripted()
    async with serve(scripted.handler, "127.0.0.1", 0) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        scripted.url = f"ws://127.0.0.1:{port}/v2"
        yield scripted


async def until(cond: Callable[[], bool], within: float = 2.0) -> None:
    async with asyncio.timeout(within):
        while not cond():  # noqa: ASYNC110 - polling the server's log
            await asyncio.sleep(0.01)


PAIRS = [f"P{i}/USD" for i in range(7)]


async def test_instrument_first_then_paced_batches_then_unsubscribe_with_depth(
    server: Scripted,
) -> None:
    async with FeedClient(PAIRS, url=server.url, depth=25, subscribe_batch=3,
                          subscribe_pacing=0.05, heartbeat_timeout=1.0) as client:
        await until(lambda: len(server.book_requests()) == 3)
        first = server.requests[0][1]
        assert first["method"] == "subscribe" and first["params"] == {"channel": "instrument"}
        subs = server.book_requests()
        assert [r["params"]["symbol"] for _, r in subs] == [PAIRS[0:3], PAIRS[3:6], PAIRS[6:]]
        assert all(r["params"]["depth"] == 25 and r["params"]["snapshot"] is True
                   for _, r in subs)
        gaps = [b[0] - a[0] for a, b in zip(subs, subs[1:], strict=False)]
        assert all(g >= 0.045 for g in gaps), gaps
        ids = [r["req_id"] for _, r in server.requests]
        assert len(set(ids)) == len(ids)  # every request has its own req_id

        await client.remove_pairs(PAIRS[:2])
        await until(lambda: len(server.book_requests("unsubscribe")) == 1)
        _, unsub = server.book_requests("unsubscribe")[0]
        assert unsub["params"] == {"channel": "book", "symbol": PAIRS[:2], "depth": 25}
        assert client.pairs == tuple(PAIRS[2:])


async def test_an_error_naming_no_symbol_puts_every_pair_of_its_request_in_error(
    server: Scripted,
) -> None:
    def refuse_first(req: dict[str, Any]) -> list[dict[str, Any]] | None:
        if req.get("params", {}).get("symbol") == ["A/USD", "B/USD"]:
            return [{"method": "subscribe", "req_id": req["req_id"], "success": False,
                     "error": "Symbol field must be an array"}]
        return None

    server.answer = refuse_first
    async with FeedClient(["A/USD", "B/USD", "C/USD"], url=server.url, subscribe_batch=2,
                          subscribe_pacing=0.0, heartbeat_timeout=1.0) as client:
        await until(lambda: client.status()["B/USD"].state is PairState.ERROR)
        await until(lambda: len(server.book_requests()) == 2)
        await asyncio.sleep(0.05)
        st = client.status()
        assert st["A/USD"].state is PairState.ERROR
        assert st["A/USD"].error == st["B/USD"].error == "Symbol field must be an array"
        assert st["C/USD"].state is PairState.CONNECTING  # acked; this server sends no book
        # refused pairs are not retried on this connection...
        assert len(server.book_requests()) == 2
        # ...until asked again
        server.answer = lambda req: None
        await client.add_pairs(["A/USD"])
        await until(lambda: client.status()["A/USD"].state is PairState.CONNECTING)
        assert server.book_requests()[-1][1]["params"]["symbol"] == ["A/USD"]
        assert client.status()["B/USD"].state is PairState.ERROR


async def test_unsubscribe_error_that_says_subscribe_is_matched_by_req_id(
    server: Scripted,
) -> None:
    def not_found(req: dict[str, Any]) -> list[dict[str, Any]] | None:
        if req.get("method") == "unsubscribe":
            return [{"method": "subscribe", "req_id": req["req_id"], "success": False,
                     "error": "Subscription Not Found", "symbol": s}
                    for s in req["params"]["symbol"]]
        return None

    server.answer = not_found
    async with FeedClient(["A/USD", "B/USD"], url=server.url, heartbeat_timeout=1.0) as client:
        await until(lambda: len(server.book_requests()) == 1)
        await asyncio.sleep(0.05)
        await client.remove_pairs(["A/USD"])
        await until(lambda: len(server.book_requests("unsubscribe")) == 1)
        await asyncio.sleep(0.05)
        # the "subscribe" error did not put anything in error: the unsubscribe is done
        assert client.status()["B/USD"].state is PairState.CONNECTING
        await client.add_pairs(["A/USD"])
        await until(lambda: len(server.book_requests()) == 2)
        assert server.book_requests()[1][1]["params"]["symbol"] == ["A/USD"]
        assert client.status()["A/USD"].state is PairState.CONNECTING


async def test_quiet_line_gets_an_application_ping(server: Scripted) -> None:
    async with FeedClient(["A/USD"], url=server.url, heartbeat_timeout=0.4):
        await until(lambda: any(r.get("method") == "ping" for _, r in server.requests), 1.0)
