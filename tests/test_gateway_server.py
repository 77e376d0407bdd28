"""``daemon/gateway/server.py``: uvicorn as the daemon wants it: its signals left to the
daemon, its settings from ``[gateway]``, no ``server`` header. (Streams closed with 1001 on
shutdown: ``test_gateway_stream.py``.) An answer still being sent when the shutdown's grace is
over (a client that stopped reading a long export) is cut by the server, logged as one
WARNING, instead of being cancelled by uvicorn's own timeout (an ERROR, a traceback)."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from conftest import free_port
from gateway_support import Stack, served
from krakenstream.daemon.gateway import server as gateway_server
from krakenstream.daemon.gateway.server import GatewayServer, make_server


@pytest.mark.slow
async def test_uvicorn_leaves_the_signals_to_the_daemon_and_names_no_server(gw: Stack) -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    async with served(gw.services) as (url, server, _app):
        assert server.started
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
        async with httpx.AsyncClient(base_url=url) as client:
            r = await client.get("/health")
        assert r.status_code in (200, 503) and "server" not in r.headers


@pytest.mark.slow
async def test_host_port_and_limits_come_from_the_settings(gw: Stack) -> None:
    settings = gw.services.settings.gateway
    config = make_server(gw.services).config
    assert (config.host, config.port) == (settings.host, settings.port)
    assert config.proxy_headers is False  # X-Forwarded-* only from gateway.trusted_proxies
    assert config.ws_max_size == 64 * 1024 and config.log_config is None
    other = make_server(gw.services, host="127.0.0.1", port=1).config
    assert (other.host, other.port) == ("127.0.0.1", 1)


async def endless(scope: Scope, receive: Receive, send: Send) -> None:
    """An answer that never ends, streamed as the gateway streams its exports."""
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"]  # lifespan.startup, then lifespan.shutdown
            await send({"type": f"{kind}.complete"})
            if kind == "lifespan.shutdown":
                return

    async def chunks() -> AsyncIterator[bytes]:
        while True:  # each chunk awaited for, as the store's reads are
            await asyncio.sleep(0)
            yield b"x" * 65536

    await StreamingResponse(chunks(), media_type="text/csv")(scope, receive, send)


async def test_an_answer_past_the_grace_is_cut_with_one_warning(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(gateway_server, "SHUTDOWN_GRACE", 0.5)
    port = free_port()
    server = GatewayServer(uvicorn.Config(endless, host="127.0.0.1", port=port,
                                          log_config=None, lifespan="on",
                                          timeout_graceful_shutdown=3))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started
    client = socket.create_connection(("127.0.0.1", port))
    try:
        client.sendall(b"GET /export HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await asyncio.to_thread(client.recv, 4096)
        assert first.startswith(b"HTTP/1.1 200")
        # the client now stops reading: the server's sends block once the buffers are full
        caplog.set_level(logging.INFO)
        stopping = time.monotonic()
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        took = time.monotonic() - stopping
    finally:
        client.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    cut = [r.getMessage() for r in caplog.records if "request cut short" in r.getMessage()]
    assert cut == ["request cut short: GET /export: the server is stopping and its 0.5 s "
                   "grace is over"]
    assert took < 3  # before uvicorn's own timeout
