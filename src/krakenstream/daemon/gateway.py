"""The HTTP gateway: the daemon's API (the README's "HTTP gateway") as a FastAPI app on uvicorn.

``create_app(services)`` builds the app over the services of this process; ``make_server``
wraps it in a uvicorn server that leaves signals and logging to the daemon. Routes are
closures over ``services``, so the only per-request dependency is the bearer check, which is
``async`` (a sync dependency would run in a thread pool) and calls the cheap ``auth.verify``
directly. Answers are encoded with orjson and returned as ready responses, which skips
FastAPI's response validation; the pydantic models below document them in ``/docs``.

Where data comes from: ``latest`` and ``history`` read the history store; an order book is
read live from the orderbook role when it runs in this process, else it is the newest snapshot
the gateway's bus tap has seen (:mod:`.gateway_stream`); ``/api/pairs`` asks the orderbook
role (503 without it for changes).
"""

# no "from __future__ import annotations": FastAPI reads the route signatures at runtime, and
# the aliases they use (Authed, Pair) are local to create_app, out of reach of a forward ref

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Annotated, Any, Literal

import orjson
import uvicorn
from fastapi import FastAPI, Query, Request, Security, WebSocket
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocketDisconnect

from .. import __version__
from ..core.analysis import SeriesSummary
from ..core.pairs import normalize_pair
from ..core.snapshot import Snapshot
from ..core.times import iso, iso_ms
from ..errors import AuthError, BackendUnavailable, KmsError, NotFound
from ..feed.status import PairState
from ..store.base import HistoryStore
from ..users.base import User
from ..users.service import AuthService
from ..users.tokens import Claims
from ..wire import BAD_PAIR, BAD_TOKEN, classify
from .gateway_history import aclose, csv_body, json_body, ndjson_body
from .gateway_http import (
    USER_KEY,
    BodyLimitMiddleware,
    ObserveMiddleware,
    VerifiedTokens,
    install_error_handlers,
    parse_time,
    redact_uvicorn_logs,
)
from .gateway_stream import (
    LatestCache,
    StreamClient,
    StreamHub,
    send_until_closed,
)
from .orderbook import OrderbookRole
from .services import Services

log = logging.getLogger("krakenstream.gateway")

#: seconds a health probe of one backend may take before it counts as down
HEALTH_TIMEOUT = 2.0
#: a snapshot seen on the bus counts as live for this many snapshot intervals (plus 1 s)
LIVE_INTERVALS = 3
#: seconds an answer of ``latest`` is reused at most (see LatestCache)
LATEST_TTL = 0.1
#: seconds a WebSocket close may wait for the client's socket to take the close frame
WS_CLOSE_TIMEOUT = 2.0


# -- documented shapes (for /docs; answers are built as dicts and encoded with orjson) ---------


class Credentials(BaseModel):
    email: str
    password: str


class PairRequest(BaseModel):
    pair: str


class UserOut(BaseModel):
    id: int
    email: str
    created_at: str


class TokenOut(BaseModel):
    token: str
    token_type: str
    expires_at: str


class ErrorOut(BaseModel):
    error: str
    code: str
    hint: str | None = None


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorOut} for s in statuses}


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def _user(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "created_at": iso(user.created_at)}


async def _probe(check: Awaitable[Any]) -> bool:
    """Whether a backend answered within HEALTH_TIMEOUT."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            result = await check
    except Exception as exc:  # whatever a probe raises, health answers (and says "down")
        log.debug("health probe failed: %r", exc)
        return False
    return result is not False


def create_app(services: Services) -> FastAPI:
    """The gateway app over ``services``; its lifespan starts and stops the bus tap."""
    settings = services.settings
    hub = StreamHub(services.bus, services.metrics, backlog=settings.gateway.ws_backlog)
    latest_cache = LatestCache(hub, ttl=min(LATEST_TTL, settings.kraken.snapshot_interval / 2))
    history_cap = settings.store.history_limit
    live_age_ms = (LIVE_INTERVALS * settings.kraken.snapshot_interval + 1.0) * 1000

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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

    app = FastAPI(
        title="krakenstream gateway",
        version=__version__,
        description="Exact, checksum-verified Kraken order books: snapshots, history, live "
        "stream. Authenticate with `POST /api/users/login`, then `Authorization: Bearer`.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.hub = hub
    app.state.latest_cache = latest_cache
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit=settings.gateway.max_body_bytes)
    app.add_middleware(ObserveMiddleware, metrics=services.metrics)  # outermost: sees all
    redact_uvicorn_logs()

    tokens = VerifiedTokens(lambda token: auth_service().verify(token))
    bearer = HTTPBearer(auto_error=False, description="a token from POST /api/users/login")

    def auth_service() -> AuthService:
        if services.auth is None:
            raise BackendUnavailable("this daemon has no users backend (gateway role not run)")
        return services.auth

    def store() -> HistoryStore:
        if services.store is None:
            raise BackendUnavailable("this daemon has no history store")
        return services.store

    async def claims_of(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> Claims:
        if creds is None:
            raise AuthError("missing bearer token: send Authorization: Bearer <token>")
        claims = tokens.verify(creds.credentials)
        request.scope[USER_KEY] = claims.user_id
        return claims

    Authed = Annotated[Claims, Security(claims_of)]
    Pair = Annotated[str, PathParam(description="a pair: ETH-USD, eth-usd or ETH%2FUSD")]

    # -- users ------------------------------------------------------------------------------

    @app.post("/api/users/register", status_code=201, response_model=UserOut,
              responses=_errors(409, 413, 422, 503), tags=["users"])
    async def register(body: Credentials) -> Response:
        user = await auth_service().register(body.email, body.password)
        return _json(_user(user), 201)

    @app.post("/api/users/login", response_model=TokenOut,
              responses=_errors(401, 413, 422, 429, 503), tags=["users"])
    async def login(body: Credentials, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        issued = await auth_service().login(body.email, body.password, client)
        request.scope[USER_KEY] = issued.user.id
        return _json({"token": issued.token, "token_type": issued.token_type,
                      "expires_at": iso(issued.expires_at)})

    @app.get("/api/users/me", response_model=UserOut, responses=_errors(401, 503),
             tags=["users"])
    async def me(claims: Authed) -> Response:
        return _json(_user(await auth_service().me(claims)))

    # -- analysis ---------------------------------------------------------------------------

    @app.get("/api/analysis/latest/{pair:path}", responses=_errors(401, 404, 422, 503),
             tags=["analysis"])
    async def latest(pair: Pair, claims: Authed) -> Response:
        """The newest stored snapshot of the pair (``Snapshot.to_dict()``)."""
        name = normalize_pair(pair)
        st = store()
        body = await latest_cache.get(name, lambda: st.latest(name))
        if body is None:
            raise NotFound(f"no snapshot of {name} stored yet",
                           hint="GET /api/pairs lists the tracked pairs")
        return Response(body, media_type="application/json")

    @app.get("/api/analysis/history/{pair:path}", responses=_errors(401, 404, 422, 503),
             tags=["analysis"])
    async def history(
        pair: Pair,
        claims: Authed,
        since: Annotated[str | None, Query(description="ISO 8601 or epoch ms")] = None,
        until: Annotated[str | None, Query(description="ISO 8601 or epoch ms")] = None,
        limit: Annotated[int | None, Query(ge=1, le=history_cap)] = None,
        order: Literal["desc", "asc"] = "desc",
        format: Literal["json", "csv", "ndjson"] = "json",
    ) -> Response:
        """Stored snapshots, newest first by default, streamed as JSON, NDJSON or CSV."""
        name = normalize_pair(pair)
        lo, hi = parse_time("since", since), parse_time("until", until)
        st = store()
        rows = st.history_json(name, since=lo, until=hi, limit=limit, order=order)
        try:
            first: bytes | None = await anext(rows)
        except StopAsyncIteration:
            first = None
        except BaseException:
            await aclose(rows)
            raise
        if first is None:
            await aclose(rows)
            if await st.count(name) == 0:
                raise NotFound(f"no snapshot of {name} stored",
                               hint="GET /api/pairs lists the tracked pairs")
        if format == "csv":
            filename = name.replace("/", "-")
            return StreamingResponse(
                csv_body(first, rows), media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})
        if format == "ndjson":
            return StreamingResponse(ndjson_body(first, rows), media_type="application/x-ndjson")
        return StreamingResponse(json_body(name, order, first, rows),
                                 media_type="application/json")

    @app.get("/api/analysis/summary/{pair:path}", responses=_errors(401, 404, 422, 503),
             tags=["analysis"])
    async def summary(
        pair: Pair,
        claims: Authed,
        since: Annotated[str | None, Query(description="ISO 8601 or epoch ms")] = None,
        until: Annotated[str | None, Query(description="ISO 8601 or epoch ms")] = None,
        limit: Annotated[int | None, Query(ge=1, le=history_cap,
                                           description="the newest N snapshots")] = None,
    ) -> Response:
        """Coverage, gaps, mid change and volatility, spread percentiles and imbalance over
        the stored snapshots in the window (see ``core.analysis.SeriesSummary``)."""
        name = normalize_pair(pair)
        lo, hi = parse_time("since", since), parse_time("until", until)
        st = store()
        rows = [row async for row in st.history_json(name, since=lo, until=hi, limit=limit,
                                                     order="desc")]
        if not rows and await st.count(name) == 0:
            raise NotFound(f"no snapshot of {name} stored",
                           hint="GET /api/pairs lists the tracked pairs")
        result = await asyncio.to_thread(_summarize_rows, rows)
        result["pair"] = name
        return _json(result)

    # -- order books ------------------------------------------------------------------------

    @app.get("/api/orderbook/{pair:path}", responses=_errors(401, 404, 422, 503),
             tags=["orderbook"])
    async def orderbook(
        pair: Pair,
        claims: Authed,
        depth: Annotated[int | None, Query(ge=1, le=settings.kraken.depth)] = None,
    ) -> Response:
        """The live book of an in-process orderbook role, else the newest bus snapshot."""
        name = normalize_pair(pair)
        role = services.orderbook
        if role is not None and name in role.pairs:
            book = role.book(name)
            if book is None:
                st = role.status().get(name)
                state = st.state.value if st is not None else "untracked"
                raise BackendUnavailable(f"{name} is not live (state {state})")
            snap = Snapshot.from_book(book, ts=round(time.time() * 1000), seq=0)
            return _json(_book(snap, "live", depth))
        seen = hub.latest.get(name)
        if seen is None:
            raise NotFound(f"{name} is not tracked: no book and no snapshot of it seen",
                           hint="POST /api/pairs to track it")
        age_ms = time.time() * 1000 - seen.ts
        if age_ms > live_age_ms:
            raise BackendUnavailable(
                f"{name} is not live (state stale: its newest snapshot is "
                f"{age_ms / 1000:.0f} s old)")
        return _json(_book(seen, "snapshot", depth))

    # -- pairs ------------------------------------------------------------------------------

    def orderbook_role() -> OrderbookRole:
        if services.orderbook is None:
            raise BackendUnavailable(
                "this daemon does not run the orderbook role: start or stop tracking pairs "
                "on the daemon that does",
                hint="kms daemon run --roles orderbook,...")
        return services.orderbook

    @app.get("/api/pairs", responses=_errors(401, 503), tags=["pairs"])
    async def list_pairs(claims: Authed) -> Response:
        """Tracked pairs with their feed state, counters and stored snapshot count."""
        st = store()
        out: list[dict[str, Any]] = []
        if services.orderbook is not None:
            status = services.orderbook.status()
            names = sorted(status)
            counts = await asyncio.gather(*(st.count(p) for p in names))
            for name, n in zip(names, counts, strict=True):
                out.append({**status[name].to_dict(), "snapshots": n})
        else:
            # another process tracks them: what the bus and the store know
            now_ms = time.time() * 1000
            names = sorted(set(await st.pairs()) | set(hub.latest))
            counts = await asyncio.gather(*(st.count(p) for p in names))
            for name, n in zip(names, counts, strict=True):
                snap = hub.latest.get(name)
                live = snap is not None and now_ms - snap.ts <= live_age_ms
                out.append({"pair": name, "state": "live" if live else "unknown",
                            "frames": None, "mismatches": None, "crossed": None,
                            "resyncs": None, "reconnects": None, "last_frame_time": None,
                            "since": None, "error": None, "snapshots": n})
        return _json({"pairs": out})

    @app.post("/api/pairs", status_code=202, responses=_errors(401, 409, 413, 422, 503),
              tags=["pairs"])
    async def track(body: PairRequest, claims: Authed) -> Response:
        """Start tracking a pair; it goes live once its first snapshot verifies."""
        role = orderbook_role()
        name = normalize_pair(body.pair)
        await role.track(name)
        st = role.status().get(name)
        state = st.state.value if st is not None else PairState.CONNECTING.value
        return _json({"pair": name, "state": state}, 202)

    @app.delete("/api/pairs/{pair:path}", responses=_errors(401, 404, 422, 503),
                tags=["pairs"])
    async def untrack(pair: Pair, claims: Authed) -> Response:
        role = orderbook_role()
        name = normalize_pair(pair)
        await role.untrack(name)
        return _json({"pair": name, "state": "untracked"})

    # -- live stream ------------------------------------------------------------------------

    @app.websocket("/api/stream/{pair:path}")
    async def stream(websocket: WebSocket, pair: str) -> None:
        """Each new snapshot of the pair as ``{"type":"snapshot","data":...}``; feed state
        changes as ``{"type":"status",...}``. Token: ``Authorization`` or ``?token=``."""
        token = _ws_token(websocket)
        await websocket.accept()
        try:
            claims = tokens.verify(token or "")
            websocket.scope[USER_KEY] = claims.user_id
        except KmsError as exc:
            await websocket.close(BAD_TOKEN, _reason(exc))
            return
        try:
            name = normalize_pair(pair)
        except KmsError as exc:
            await websocket.close(BAD_PAIR, _reason(exc))
            return
        client = hub.add(name)
        reader = asyncio.create_task(_drain_incoming(websocket, client),
                                     name="kms-ws-reader")
        try:
            await send_until_closed(client, websocket.send_text)
            # a client that reads nothing cannot take a close frame either: do not wait on it
            with contextlib.suppress(RuntimeError, OSError, TimeoutError):
                async with asyncio.timeout(WS_CLOSE_TIMEOUT):
                    await websocket.close(client.close_code or 1000, client.close_reason)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the client went away (or the server closed it): nothing left to send
        finally:
            hub.remove(client)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    # -- operations -------------------------------------------------------------------------

    @app.get("/health", tags=["operations"])
    async def health() -> Response:
        """Feed state per pair, bus, store and users reachability; always 200 once up."""
        problems: list[str] = []
        feed: dict[str, Any] | None = None
        if services.orderbook is not None:
            conn = services.orderbook.connection()
            pairs = {p: s.to_dict() for p, s in sorted(services.orderbook.status().items())}
            feed = {"connection": conn.to_dict(), "pairs": pairs}
            if not conn.connected:
                problems.append("feed: not connected")
            problems.extend(f"feed: {p} is {s['state']}" for p, s in pairs.items()
                            if s["state"] != PairState.LIVE.value)
        bus_ok, store_ok, users_ok = await asyncio.gather(
            _probe(services.bus.healthy()),
            _probe(services.store.ping()) if services.store is not None else _none(),
            _probe(services.auth.store.ping()) if services.auth is not None else _none(),
        )
        bus_stats = services.bus.stats()
        if not bus_ok:
            problems.append(f"bus ({settings.bus.backend}) unreachable")
        if services.store is not None and not store_ok:
            problems.append(f"store ({settings.store.backend}) unreachable")
        if services.auth is not None and not users_ok:
            problems.append(f"users ({settings.users.backend}) unreachable")
        return _json({
            "status": "degraded" if problems else "ok",
            "problems": problems,
            "version": __version__,
            "uptime_s": round(time.time() - services.started_at, 3),
            "roles": list(services.roles),
            "feed": feed,
            "bus": {"backend": settings.bus.backend, "healthy": bus_ok,
                    **dataclasses.asdict(bus_stats)},
            "store": None if services.store is None else
            {"backend": settings.store.backend, "healthy": store_ok},
            "users": None if services.auth is None else
            {"backend": settings.users.backend, "healthy": users_ok},
            "stream": {"clients": hub.client_count, "cut_off": hub.cut_off},
        })

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text: feed, snapshots, bus, logins and HTTP counters."""
        m = services.metrics
        if services.orderbook is not None:
            services.orderbook.export_metrics()
        stats = services.bus.stats()
        m.bus_published.set(stats.published)
        m.bus_dropped.set(stats.dropped)
        if services.auth is not None:
            t = services.auth.throttle.stats()
            m.logins_failed.set(t.failures)
            m.logins_throttled.set(t.throttled)
        return Response(m.render(), media_type=CONTENT_TYPE_LATEST)

    return app


async def _none() -> bool:
    return False


def _book(snap: Snapshot, source: str, depth: int | None) -> dict[str, Any]:
    """The order book answer; always ``state: live`` (a book that is not is a 503)."""
    d = snap.to_dict()
    bids, asks = d["bids"], d["asks"]
    if depth is not None:
        bids, asks = bids[:depth], asks[:depth]
    return {"pair": snap.pair, "state": PairState.LIVE.value, "source": source,
            "checksum": snap.checksum, "exchange_ts": snap.exchange_ts, "time": iso_ms(snap.ts),
            "best_bid": d["best_bid"], "best_ask": d["best_ask"], "spread": d["spread"],
            "mid": d["mid"], "bids": bids, "asks": asks}


def _summarize_rows(rows_newest_first: list[bytes]) -> dict[str, Any]:
    """Off the event loop: decode stored snapshots and summarise them oldest first."""
    acc = SeriesSummary()
    for row in reversed(rows_newest_first):
        acc.add_dict(orjson.loads(row))
    return acc.result()


def _ws_token(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return websocket.query_params.get("token")


def _reason(exc: KmsError) -> str:
    """A close reason: at most 123 bytes of UTF-8 (RFC 6455)."""
    _, code = classify(exc)
    text = f"{code}: {exc.message}"
    return text.encode()[:123].decode(errors="ignore")


async def _drain_incoming(websocket: WebSocket, client: StreamClient) -> None:
    """Read (and ignore) what the client sends, so its close frame is noticed at once."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    client.close(1000, "client closed")


# -- the server --------------------------------------------------------------------------------


class GatewayServer(uvicorn.Server):
    """uvicorn without its signal handling (the daemon owns SIGTERM/SIGINT), and closing
    WebSocket clients with 1001 before uvicorn's own shutdown would close them with 1012."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def shutdown(self, sockets: Any = None) -> None:
        app = self.config.app
        hub = getattr(getattr(app, "state", None), "hub", None)
        if isinstance(hub, StreamHub):
            hub.close_all(1001, "server shutting down")
            await hub.drain(within=1.0)
        await super().shutdown(sockets=sockets)


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
    config = uvicorn.Config(
        app or create_app(services),
        host=gw.host if host is None else host,
        port=gw.port if port is None else port,
        log_config=None,
        access_log=False,  # ObserveMiddleware writes the one line per request
        lifespan="on",
        timeout_graceful_shutdown=5,
        ws_ping_interval=20,
        ws_max_size=64 * 1024,  # clients only ever send their close frame
        server_header=False,
    )
    return GatewayServer(config)
