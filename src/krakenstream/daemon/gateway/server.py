"""The gateway on uvicorn: :func:`make_server`, which leaves signals and logging to the daemon."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from ...wire import GOING_AWAY
from ..services import Services
from .app import create_app
from .deps import Gateway
from .middleware import log_path
from .protocols import protocols

log = logging.getLogger("krakenstream.gateway")

#: seconds an answer still being sent at shutdown (an export) is given to finish; then its
#: connection is closed by us, logged as one WARNING, before uvicorn's own timeout (which
#: would cancel the task and log it as an ERROR with a traceback, the answer as a 200)
SHUTDOWN_GRACE = 5.0


class GatewayServer(uvicorn.Server):
    """uvicorn without its signal handling (the daemon owns SIGTERM/SIGINT), and closing
    WebSocket clients with 1001 before uvicorn's own shutdown would close them with 1012."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def shutdown(self, sockets: Any = None) -> None:
        gateway = getattr(getattr(self.config.app, "state", None), "gateway", None)
        if isinstance(gateway, Gateway):
            gateway.hub.close_all(GOING_AWAY, "server shutting down")
            await gateway.hub.drain(within=1.0)
        cut = asyncio.get_running_loop().call_later(SHUTDOWN_GRACE, self.cut_answers)
        try:
            await super().shutdown(sockets=sockets)
        finally:
            cut.cancel()

    def cut_answers(self) -> None:
        """The grace is over: close the connections of answers still being sent. Aborted,
        not closed: a client that stopped reading would hold a closing transport forever.
        The client sees an answer cut short (``kms export`` then leaves no file)."""
        for conn in list(self.server_state.connections):
            transport = getattr(conn, "transport", None)
            if transport is None or transport.is_closing():
                continue
            scope = getattr(conn, "scope", None) or {}
            log.warning("request cut short: %s %s: the server is stopping and its %g s "
                        "grace is over", scope.get("method", "-"),
                        log_path(scope) if scope else "-", SHUTDOWN_GRACE)
            transport.abort()


def make_server(
    services: Services,
    *,
    host: str | None = None,
    port: int | None = None,
    app: FastAPI | None = None,
) -> GatewayServer:
    """A configured uvicorn server for the gateway (``await server.serve()``, or
    ``serve(sockets=[sock])`` on a socket bound by the caller). Host and port default to
    ``gateway.host``/``gateway.port``. Stop it with ``server.should_exit = True``."""
    gw = services.settings.gateway
    http, ws = protocols(gw.header_timeout, services.metrics.http_header_timeouts.inc)
    config = uvicorn.Config(
        app or create_app(services),
        host=gw.host if host is None else host,
        port=gw.port if port is None else port,
        log_config=None,
        access_log=False,  # ObserveMiddleware writes the one line per request
        lifespan="on",
        # a backstop: cut_answers closes what is left after SHUTDOWN_GRACE
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE) + 5,
        ws_ping_interval=20,
        ws_max_size=64 * 1024,  # clients only ever send their close frame
        server_header=False,
        # X-Forwarded-* only from gateway.trusted_proxies, which the app applies itself:
        # uvicorn's default would believe any process on 127.0.0.1 (FORWARDED_ALLOW_IPS)
        proxy_headers=False,

        # our h11 and websockets protocols: a request's headers have gateway.header_timeout
        # seconds, a refused WebSocket handshake gets its answer (see protocols.py)
        http=http,
        ws=ws,
    )
    return GatewayServer(config)
