"""The gateway app: :func:`create_app` assembles one router per area over this process's
services, with the lifespan, middleware and error handlers every route shares.

Where things are (the package docstring has the whole map): routes live in one module per
area, as plain functions on that module's ``router``; what they need of the process they
declare as parameters typed with :mod:`.deps`' aliases (``State``, ``Store``, ``Auth``,
``Authed``, ``Pair``), which read the app's :class:`.deps.Gateway` from ``app.state.gateway``.

To add a route to an area, add a function to its module. To add an area (a dashboard, bars,
admin):

1. write ``gateway/<area>.py`` with ``router = APIRouter(tags=["<area>"])`` and its routes,
   each with its full path and ``responses=documented(...)`` naming the error statuses it
   may answer; take state through :mod:`.deps` (a new dependency is ``async def``: FastAPI
   runs a sync one in a worker thread), answer with :func:`.responses.json_response` or a
   ready ``Response``, and raise our errors (:mod:`krakenstream.errors`), which
   :mod:`.errors` renders;
2. add ``<area>.router`` to :data:`ROUTERS` below;
3. add its operations to ``tests/test_gateway_openapi.py``, its tests to
   ``tests/test_gateway_<area>.py``, and a line to the package docstring.

A router's routes are added to the app as they are (:func:`add_routes`), not through
``include_router``: so a prefix, tags or dependencies belong on the ``APIRouter`` itself,
where they are applied as each route is declared.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from ... import __version__
from ..services import Services
from . import admin, bars, books, dashboard, history, operations, pairs, stream, users
from .deps import Gateway
from .errors import install_error_handlers
from .logs import redact_uvicorn_logs
from .methods import MethodsMiddleware
from .middleware import BodyLimitMiddleware, ObserveMiddleware
from .params import document_maxima

log = logging.getLogger("krakenstream.gateway")

#: the areas, in the order their routes are matched and listed in /docs
ROUTERS: tuple[APIRouter, ...] = (
    users.router,
    admin.router,
    history.router,
    bars.router,
    books.router,
    pairs.router,
    stream.router,
    operations.router,
    dashboard.router,
)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the bus tap (and listen to the orderbook role's feed events) while the app runs."""
    gateway: Gateway = app.state.gateway
    services, hub = gateway.services, gateway.hub
    await hub.start()
    if services.orderbook is not None:
        services.orderbook.add_listener(hub.on_feed_event)
    log.info("gateway up roles=%s", ",".join(services.roles))
    try:
        yield
    finally:
        if services.orderbook is not None:
            services.orderbook.remove_listener(hub.on_feed_event)
        await hub.stop()
        log.info("gateway stopped")


def create_app(services: Services) -> FastAPI:
    """The gateway app over ``services``; its lifespan starts and stops the bus tap."""
    gateway = Gateway.over(services)
    app = FastAPI(
        title="krakenstream gateway",
        version=__version__,
        description="Exact, checksum-verified Kraken order books: snapshots, history, live "
        "stream. Authenticate with `POST /api/users/login`, then `Authorization: Bearer`.",
        lifespan=lifespan,
        # Starlette's slash redirect writes the request's Host into its Location: a client
        # (or a shared cache) could be sent anywhere; the canonical path alone is served
        redirect_slashes=False,
        # FastAPI's pages load their scripts from a CDN: /docs is ours (dashboard.py), with
        # swagger-ui from the package, so it works offline and under the dashboard's CSP
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = gateway
    install_error_handlers(app)
    settings = services.settings.gateway
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    if settings.trusted_proxies:
        # the client a trusted proxy names replaces the peer (throttling counts by it); from
        # anyone else X-Forwarded-For is ignored. Here rather than in uvicorn, so the rule is
        # the same in-process and served (make_server turns uvicorn's own off)
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.add_middleware(MethodsMiddleware, routes=app.router.routes)
    app.add_middleware(ObserveMiddleware, metrics=services.metrics)  # outermost: sees all
    redact_uvicorn_logs()
    for router in ROUTERS:
        add_routes(app, router)
    app.openapi = _documenting_maxima(app, gateway.maxima)  # type: ignore[method-assign]
    return app


def create_health_app(services: Services) -> FastAPI:
    """``/health`` and ``/metrics`` alone, for a process that runs no gateway (served on
    ``daemon.health_port``): the operations router over the same state, with no bus tap, no
    users, no schema, and no log line per request (a scraper asks every few seconds)."""
    app = FastAPI(title="krakenstream role health", version=__version__, docs_url=None,
                  redoc_url=None, openapi_url=None, redirect_slashes=False)
    app.state.gateway = Gateway.over(services)
    install_error_handlers(app)
    app.add_middleware(MethodsMiddleware, routes=app.router.routes)
    add_routes(app, operations.router)
    return app


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Add ``router``'s routes to the app's own router, as they are.

    Since FastAPI 0.137, ``include_router`` keeps the included router as a node every request
    walks (matched twice, its routes' version summed): about 140 more Python calls per
    request, a fifth of what a ``latest`` request costs in all (``bench/gateway.py``'s
    route, counted with cProfile). Our routers need nothing of inclusion (no prefix,
    dependencies or overrides given at include time), and a route object holds no state of
    its app (a route reads it from the request), so one route serves every app."""
    app.router.routes.extend(router.routes)


def _documenting_maxima(app: FastAPI, maxima: dict[str, int]) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with this app's parameter maxima written in (see :mod:`.params`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_maxima(build(), maxima)
        return app.openapi_schema

    return openapi
