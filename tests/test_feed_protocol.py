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

from krakenstream.feed import FeedClient, FeedOptions, PairState

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
                frames = self.answer(req)
                for frame in self.default(req) if frames is None else frames:
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
    options = FeedOptions(url=server.url, depth=25, subscribe_batch=3, subscribe_pacing=0.05,
                          heartbeat_timeout=1.0)
    async with FeedClient(options, PAIRS) as client:
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
    options = FeedOptions(url=server.url, subscribe_batch=2, subscribe_pacing=0.0,
                          heartbeat_timeout=1.0)
    async with FeedClient(options, ["A/USD", "B/USD", "C/USD"]) as client:
        await until(lambda: client.status()["B/USD"].state is PairState.ERROR)
        await until(lambda: len(server.book_requests()) == 2)
        await until(lambda: client.idle)  # every answer read, nothing more to send
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
    options = FeedOptions(url=server.url, heartbeat_timeout=1.0)
    async with FeedClient(options, ["A/USD", "B/USD"]) as client:
        await until(lambda: len(server.book_requests()) == 1)
        await until(lambda: client.idle)
        await client.remove_pairs(["A/USD"])
        await until(lambda: len(server.book_requests("unsubscribe")) == 1)
        await until(lambda: client.idle)
        # the "subscribe" error did not put anything in error: the unsubscribe is done
        assert client.status()["B/USD"].state is PairState.CONNECTING
        await client.add_pairs(["A/USD"])
        await until(lambda: len(server.book_requests()) == 2)
        assert server.book_requests()[1][1]["params"]["symbol"] == ["A/USD"]
        assert client.status()["A/USD"].state is PairState.CONNECTING


async def test_quiet_line_gets_an_application_ping(server: Scripted) -> None:
    async with FeedClient(FeedOptions(url=server.url, heartbeat_timeout=0.4), ["A/USD"]):
        await until(lambda: any(r.get("method") == "ping" for _, r in server.requests), 1.0)


@pytest.mark.slow
async def test_a_missing_ack_ends_the_connection(server: Scripted) -> None:
    def silent(req: dict[str, Any]) -> list[dict[str, Any]] | None:
        return [] if req.get("params", {}).get("channel") == "book" else None

    server.answer = silent  # acks the instrument only
    options = FeedOptions(url=server.url, ack_timeout=0.3, heartbeat_timeout=5.0,
                          backoff_initial=0.01, backoff_max=0.05)
    async with FeedClient(options, ["A/USD"]) as client:
        await until(lambda: client.connection_status().reconnects >= 1, 3.0)
        assert "no answer to subscribe" in (client.connection_status().last_error or "")


async def test_already_subscribed_is_cycled_for_a_fresh_snapshot(server: Scripted) -> None:
    answered: list[str] = []

    def already_once(req: dict[str, Any]) -> list[dict[str, Any]] | None:
        params = req.get("params", {})
        if req.get("method") == "subscribe" and params.get("channel") == "book" \
                and not answered:
            answered.append("x")
            return [{"method": "subscribe", "req_id": req["req_id"], "success": False,
                     "error": "Already subscribed", "symbol": "A/USD"}]
        return None

    server.answer = already_once
    async with FeedClient(FeedOptions(url=server.url, heartbeat_timeout=1.0),
                          ["A/USD"]) as client:
        await until(lambda: len(server.book_requests()) == 2)
        methods = [r["method"] for _, r in server.requests if r.get("method") != "ping"]
        assert methods[-3:] == ["subscribe", "unsubscribe", "subscribe"]
        st = client.status()["A/USD"]
        assert st.state is PairState.RESYNCING and st.resyncs == 1


async def test_hooks_state_change_errors_are_logged_frame_errors_stop_the_client(
    server: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    def bad_hook(_ev: object) -> None:
        raise RuntimeError("hook bug")

    def refuse_c(req: dict[str, Any]) -> list[dict[str, Any]] | None:
        symbols = req.get("params", {}).get("symbol", [])
        if "C/USD" not in symbols:
            return None
        # the others of the request (A/USD if it went with C/USD) are acked as usual
        others = {**req, "params": {**req["params"], "symbol": [s for s in symbols
                                                                 if s != "C/USD"]}}
        return [{"method": "subscribe", "req_id": req["req_id"], "success": False,
                 "error": "nope", "symbol": "C/USD"}, *server.default(others)]

    server.answer = refuse_c
    async with FeedClient(FeedOptions(url=server.url, heartbeat_timeout=1.0), ["A/USD"],
                          on_state_change=bad_hook) as client:
        await client.add_pairs(["C/USD"])
        await until(lambda: client.status()["C/USD"].state is PairState.ERROR)
        await until(lambda: client.idle)
        assert client.connection_status().connected  # the hook's error changed nothing
    assert "on_state_change hook failed" in caplog.text

    def bad_frame_hook(_text: str) -> None:
        raise OSError(28, "No space left on device")

    server.answer = lambda req: None
    client = FeedClient(FeedOptions(url=server.url, heartbeat_timeout=1.0), ["A/USD"],
                        on_frame=bad_frame_hook)
    with pytest.raises(OSError, match="No space left"):
        async with asyncio.timeout(3):
            await client.run()
    await client.stop()  # idempotent after the end, raises nothing more


async def test_a_precision_change_resyncs_the_pair(
    server: Scripted, shared_recording: Any
) -> None:
    lines = [ln for ln in shared_recording.read_text().splitlines() if ln.strip()]
    instrument = orjson.loads(lines[0])
    books = [orjson.loads(ln) for ln in lines if '"book"' in ln[:20]][:20]
    changed = orjson.loads(lines[0])
    changed["type"] = "update"
    changed["data"]["pairs"][0]["price_precision"] = 2

    def script(req: dict[str, Any]) -> list[dict[str, Any]] | None:
        params = req.get("params", {})
        if params.get("channel") == "instrument":
            return [{"method": "subscribe", "req_id": req["req_id"], "success": True,
                     "result": {"channel": "instrument"}}, instrument]
        if req.get("method") == "subscribe" and params.get("channel") == "book" \
                and len(server.book_requests()) == 1:
            return [{"method": "subscribe", "req_id": req["req_id"], "success": True,
                     "result": {"channel": "book", "depth": 10, "symbol": "BTC/USD"}},
                    *books, changed]
        return None

    server.answer = script
    async with FeedClient(FeedOptions(url=server.url, heartbeat_timeout=1.0),
                          ["BTC/USD"]) as client:
        await until(lambda: len(server.book_requests("unsubscribe")) == 1)
        st = client.status()["BTC/USD"]
        assert st.frames == 20 and st.mismatches == 0 and st.resyncs == 1
        assert st.state is PairState.RESYNCING and client.book("BTC/USD") is None
        await until(lambda: len(server.book_requests()) == 2)


@pytest.mark.slow
async def test_exceeded_msg_rate_slows_down_and_refuses_nothing(server: Scripted) -> None:
    """Kraken's rate complaint: the pair is asked again, later; it never goes to error."""
    complained: list[float] = []

    def complain_once(req: dict[str, Any]) -> list[dict[str, Any]] | None:
        params = req.get("params", {})
        if params.get("channel") == "book" and req.get("method") == "subscribe" \
                and not complained:
            complained.append(time.monotonic())
            return [{"method": "subscribe", "req_id": req["req_id"], "success": False,
                     "error": "Exceeded msg rate"}]
        return None

    server.answer = complain_once
    options = FeedOptions(url=server.url, subscribe_pacing=0.0, heartbeat_timeout=1.0)
    async with FeedClient(options, ["A/USD", "B/USD"]) as client:
        await until(lambda: len(server.book_requests()) == 2)
        await until(lambda: client.idle)
        (_, first), (at, again) = server.book_requests()
        assert first["params"]["symbol"] == again["params"]["symbol"] == ["A/USD", "B/USD"]
        assert at - complained[0] >= 0.45  # held back by the slower pacing (0.5 s)
        st = client.status()
        assert all(s.state is PairState.CONNECTING and s.error is None for s in st.values())
        assert client.connection_status().rate_limited == 1
