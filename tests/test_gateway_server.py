"""``daemon/gateway/server.py``: uvicorn as the daemon wants it: its signals left to the
daemon, its settings from ``[gateway]``, no ``server`` header. (Streams closed with 1001 on
shutdown: ``test_gateway_stream.py``.)"""

from __future__ import annotations

import signal

import httpx
import pytest

from gateway_support import Stack, served
from krakenstream.daemon.gateway.server import make_server


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
