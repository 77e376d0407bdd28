"""The WebSocket stream (gateway/stream.py) over loopback: uvicorn in this process, the
``websockets`` client, snapshots from the real pipeline (simulator → orderbook role → bus →
gateway tap); and the token offered as a subprotocol, on its own."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway_support import eventually, login, sample_snapshot, served, settings_for, stack
from krakenstream.daemon.gateway.stream import subprotocol_token
from krakenstream.sim.server import SimServer


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(pairs=["ETH/USD"], seed=1) as server:
        yield server


async def closed_with(ws: ClientConnection, within: float = 5.0) -> int | None:
    """Read until the server closes; the close code it sent."""
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None


@pytest.mark.slow
async def test_stream_pushes_each_snapshot(kms_home: Path, sim: SimServer) -> None:
    async with stack(settings_for(kms_home, sim.url)) as gw:
        token = await login(gw.client)
        async with served(gw.services) as (base, _server, _app):
            url = base.replace("http", "ws", 1) + "/api/stream/ETH%2FUSD"
            async with connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                               open_timeout=5) as ws:
                got = []
                async with asyncio.timeout(5):
                    while len(got) < 4:
                        msg = orjson.loads(await ws.recv())
                        if msg["type"] == "snapshot":
                            got.append(msg["data"])
            # one snapshot per 0.2 s tick, in order, none missed
            ts = [d["ts"] for d in got]
            assert [b - a for a, b in zip(ts, ts[1:], strict=False)] == [200, 200, 200]
            assert {d["pair"] for d in got} == {"ETH/USD"}

            # the token may come as a query parameter, and the pair as ETH-USD
            async with connect(base.replace("http", "ws", 1)
                               + f"/api/stream/eth-usd?token={token}", open_timeout=5) as ws:
                async with asyncio.timeout(5):
                    msg = orjson.loads(await ws.recv())
                assert msg["type"] == "snapshot" and msg["data"]["pair"] == "ETH/USD"


async def first_snapshot(ws: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    """The first snapshot message (a feed state change may come before it)."""
    async with asyncio.timeout(within):
        while True:
            msg: dict[str, Any] = orjson.loads(await ws.recv())
            if msg["type"] == "snapshot":
                return msg


@pytest.mark.slow
async def test_token_offered_as_a_subprotocol(
    kms_home: Path, sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Browsers cannot set a header on a WebSocket: they offer ``kms.bearer`` and the token
    as subprotocols, and the server accepts with ``kms.bearer`` alone (the token is never
    echoed, never in the URL, never logged)."""
    caplog.set_level(logging.DEBUG)
    async with stack(settings_for(kms_home, sim.url)) as gw:
        token = await login(gw.client)
        async with served(gw.services) as (base, _server, _app):
            url = base.replace("http", "ws", 1) + "/api/stream/ETH-USD"
            offer = [Subprotocol("kms.bearer"), Subprotocol(token)]
            async with connect(url, subprotocols=offer, open_timeout=5) as ws:
                assert ws.subprotocol == "kms.bearer"
                assert ws.response is not None
                assert ws.response.headers["Sec-WebSocket-Protocol"] == "kms.bearer"
                msg = await first_snapshot(ws)
                assert msg["data"]["pair"] == "ETH/USD"
            for bad in (["kms.bearer", "forged.token.here"], ["kms.bearer"]):
                async with connect(url, subprotocols=[Subprotocol(p) for p in bad],
                                   open_timeout=5) as ws:
                    assert ws.subprotocol == "kms.bearer"
                    assert await closed_with(ws) == 4401
            # the header still wins when both are given; other subprotocols are not chosen
            async with connect(url, subprotocols=[Subprotocol("chat")],
                               additional_headers={"Authorization": f"Bearer {token}"},
                               open_timeout=5) as ws:
                assert ws.subprotocol is None
                await first_snapshot(ws)
    # uvicorn logs request headers at DEBUG: the token's are redacted (the websockets
    # client's own log is this test's side of the wire)
    server_text = "\n".join(r.getMessage() for r in caplog.records
                            if not r.name.startswith("websockets.client"))
    assert "sec-websocket-protocol: ***" in server_text.lower()
    assert token.split(".")[2] not in server_text


@pytest.mark.slow
async def test_stream_refusals_and_status_messages(
    kms_home: Path, sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with stack(settings_for(kms_home, sim.url)) as gw:
        token = await login(gw.client)
        async with served(gw.services) as (base, _server, _app):
            ws_base = base.replace("http", "ws", 1) + "/api/stream/"
            async with connect(ws_base + "ETH-USD", open_timeout=5) as ws:
                assert await closed_with(ws) == 4401
            async with connect(ws_base + "ETH-USD?token=forged.token.here",
                               open_timeout=5) as ws:
                assert await closed_with(ws) == 4401
            async with connect(ws_base + f"ETHUSD?token={token}", open_timeout=5) as ws:
                assert await closed_with(ws) == 4404

            # a feed state change reaches the pair's clients as a status message
            async with connect(ws_base + f"ETH-USD?token={token}", open_timeout=5) as ws:
                await ws.recv()
                await sim.fault("drop")
                states = []
                async with asyncio.timeout(10):
                    while "live" not in states[1:] or not states:
                        msg = orjson.loads(await ws.recv())
                        if msg["type"] == "status":
                            assert msg["pair"] == "ETH/USD" and msg["reason"]
                            states.append(msg["state"])
                assert states[0] != "live" and states[-1] == "live"
    # uvicorn logs WebSocket paths with their query string: the token is redacted
    server_text = "\n".join(r.getMessage() for r in caplog.records)
    assert "token=***" in server_text
    assert token.split(".")[2] not in server_text


@pytest.mark.slow
async def test_slow_client_is_cut_off_with_1013(kms_home: Path) -> None:
    """A client that stops reading fills its bounded backlog and is cut off; the others
    keep receiving; memory never grows past the backlog."""
    settings = settings_for(kms_home, KMS_GATEWAY_WS_BACKLOG="4")
    async with stack(settings, roles=("gateway",)) as gw:
        token = await login(gw.client)
        async with served(gw.services) as (base, _server, app):
            url = base.replace("http", "ws", 1) + f"/api/stream/ETH-USD?token={token}"
            # a tiny receive buffer and a one-message client queue: the slow reader stalls the
            # server's socket once the kernel's buffers are full (about 10 MB on loopback, so
            # the snapshots are big: 1000 levels a side)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
            slow = await connect(url, sock=sock, max_queue=1, open_timeout=5)
            fast = await connect(url, open_timeout=5)
            try:
                hub = app.state.gateway.hub
                await eventually(_true_if(lambda: hub.client_count == 2), within=5)
                received = 0
                now = round(time.time() * 1000)
                for i in range(600):
                    await gw.services.bus.publish(sample_snapshot(now + i, levels=1000))
                    await asyncio.sleep(0.002)
                    async with asyncio.timeout(5):
                        await fast.recv()
                    received += 1
                    if hub.cut_off:
                        break
                assert hub.cut_off == 1, "the slow client was never cut off"
                assert hub.client_count == 1 and received >= 4
                assert await closed_with(slow, within=10) == 1013
                async with httpx.AsyncClient(base_url=base) as c:
                    metrics = (await c.get("/metrics")).text
                assert "kms_ws_cut_off_total 1.0" in metrics
                assert "kms_ws_clients 1.0" in metrics
                # the fast client is still served
                await gw.services.bus.publish(sample_snapshot(now + 1000))
                async with asyncio.timeout(5):
                    assert orjson.loads(await fast.recv())["data"]["ts"] == now + 1000
            finally:
                await slow.close()
                await fast.close()


@pytest.mark.slow
async def test_shutdown_closes_streams_with_1001(kms_home: Path, sim: SimServer) -> None:
    async with stack(settings_for(kms_home, sim.url)) as gw:
        token = await login(gw.client)
        async with served(gw.services) as (base, server, _app):
            url = base.replace("http", "ws", 1) + f"/api/stream/ETH-USD?token={token}"
            async with connect(url, open_timeout=5) as ws:
                await ws.recv()
                server.should_exit = True
                assert await closed_with(ws) == 1001


def _true_if(pred: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return pred()

    return check


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


@pytest.mark.slow
async def test_streams_are_capped_in_all_and_per_account(kms_home: Path, sim: SimServer) -> None:
    """gateway.max_ws_per_user and gateway.max_ws_clients: one stream past either is accepted
    and closed at once with 4429 naming the limit, and counted; a stream that closes makes
    room again (issue 14 item 7)."""
    settings = settings_for(kms_home, sim.url, KMS_GATEWAY_MAX_WS_CLIENTS="5",
                            KMS_GATEWAY_MAX_WS_PER_USER="3")
    async with stack(settings) as gw:
        tokens = [await login(gw.client, f"user{i}@example.com") for i in range(3)]
        async with served(gw.services) as (base, _server, app):
            url = base.replace("http", "ws", 1) + "/api/stream/ETH-USD"
            hub = app.state.gateway.hub

            def opening(token: str) -> Any:
                return connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                               open_timeout=5)

            async def refused(token: str) -> tuple[int | None, str]:
                async with opening(token) as ws:
                    try:
                        async with asyncio.timeout(5):
                            while True:
                                await ws.recv()
                    except ConnectionClosed as exc:
                        assert exc.rcvd is not None
                        return exc.rcvd.code, exc.rcvd.reason
                raise AssertionError("unreachable")

            first = [await opening(tokens[0]).__aenter__() for _ in range(3)]
            for ws in first:
                await first_snapshot(ws)
            code, why = await refused(tokens[0])  # a 4th for one account
            assert code == 4429 and "gateway.max_ws_per_user" in why
            second = [await opening(tokens[1]).__aenter__() for _ in range(2)]
            for ws in second:
                await first_snapshot(ws)
            assert hub.client_count == 5
            code, why = await refused(tokens[2])  # a 6th in all
            assert code == 4429 and "gateway.max_ws_clients" in why
            assert hub.client_count == 5 and hub.refused == {"total": 1, "user": 1}
            await first[0].close()
            await eventually(lambda: _true(hub.client_count == 4))
            async with opening(tokens[2]) as ws:  # room again
                await first_snapshot(ws)
            for ws in first[1:] + second:
                await ws.close()
            async with httpx.AsyncClient(base_url=base) as http:  # the served app's hub
                health = (await http.get("/health")).json()["stream"]
                metrics = (await http.get("/metrics")).text
            assert health["refused"] == {"total": 1, "user": 1} and health["max_clients"] == 5
            assert 'kms_ws_refused_total{limit="user"} 1.0' in metrics


async def _true(value: bool) -> bool:
    return value
