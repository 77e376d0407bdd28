"""What a route reaches of its process: the app's :class:`Gateway` state and the bearer check.

A route is a plain function in its area's module; what it needs (the store, the users, the
stream hub, the caller's claims) it declares as a parameter typed with an alias below, and
FastAPI hands it over per request, read from ``app.state.gateway``: one :class:`Gateway` per
app, built by :func:`.app.create_app`. Every dependency here is ``async``: FastAPI runs a sync
dependency in a worker thread, a thread hop on every request. A dependency still costs about
70 Python calls a request, so the hottest route, ``latest``, reads its state directly
(:func:`gateway_of`); ``bench/gateway.py --calls`` counts what a request costs.

The bearer check calls the cheap :class:`.tokens.VerifiedTokens` (a signature verdict already
reached is reused until the token expires), then asks the users' access cache whether the token
still opens anything (:meth:`~krakenstream.users.service.AuthService.authorize`: revoked,
account disabled or deleted are 401s; the role is the account's current one), and leaves the
user id in the scope for the request's log line. ``Admin`` routes also need the admin role
(403 ``forbidden`` otherwise). A missing backend is a 503 naming what this process lacks.
"""

# no "from __future__ import annotations": FastAPI reads these signatures at runtime

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Path, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from ...config import Settings
from ...core.pairs import PAIR_INPUT_PATTERN, SELECTOR_INPUT_PATTERN
from ...errors import AuthError, BackendUnavailable
from ...store.base import HistoryStore
from ...users.access import Principal
from ...users.service import AuthService
from ...users.tokens import Claims
from ..orderbook import OrderbookRole
from ..services import Services
from .hub import LatestCache, StreamHub
from .middleware import USER_KEY
from .params import maxima_of
from .slots import Slots
from .tokens import VerifiedTokens
from .usage import ArchiveUsage

#: scope key under which the bearer check leaves the caller's :class:`Principal`
PRINCIPAL_KEY = "kms.principal"
#: a snapshot seen on the bus counts as live for this many snapshot intervals (plus 1 s)
LIVE_INTERVALS = 3
#: seconds an answer of ``latest`` is reused at most (see LatestCache)
LATEST_TTL = 0.1


@dataclass(eq=False)
class Gateway:
    """One app's state: the services of its process and what the gateway keeps beside them."""

    services: Services
    #: the bus tap: the newest snapshot per pair, and the WebSocket clients
    hub: StreamHub
    #: the store's newest snapshot per pair, encoded, briefly reused
    latest: LatestCache
    #: a book seen on the bus is live while it is at most this old (ms)
    live_age_ms: float
    #: the maxima of the bounded parameters (see params.py)
    maxima: dict[str, int]
    #: the Parquet archive's disk use, counted now and then (None: no archive here)
    usage: ArchiveUsage | None = None
    #: verdicts of the tokens already verified (see tokens.py)
    tokens: VerifiedTokens = field(init=False)
    #: heavy reads running at once: summaries and history answers (see slots.py)
    summaries: Slots = field(init=False)
    exports: Slots = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = VerifiedTokens(lambda token: self.auth().verify(token))
        gw, refused = self.services.settings.gateway, self.services.metrics.heavy_refused
        self.summaries = Slots("summaries", gw.max_summaries, "gateway.max_summaries",
                               refused.labels("summary").inc)
        self.exports = Slots("history answers", gw.max_exports, "gateway.max_exports",
                             refused.labels("history").inc)

    @classmethod
    def over(cls, services: Services) -> "Gateway":
        settings = services.settings
        gw = settings.gateway
        hub = StreamHub(services.bus, services.metrics, backlog=gw.ws_backlog,
                        max_clients=gw.max_ws_clients, max_per_user=gw.max_ws_per_user)
        interval = settings.kraken.snapshot_interval
        return cls(
            services=services,
            hub=hub,
            latest=LatestCache(hub, ttl=min(LATEST_TTL, interval / 2)),
            live_age_ms=(LIVE_INTERVALS * interval + 1.0) * 1000,
            maxima=maxima_of(settings.store.history_limit, settings.kraken.depth,
                             settings.auth.min_password_length),
            usage=None if services.archive is None else ArchiveUsage(services.archive),
        )

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def store(self) -> HistoryStore:
        if self.services.store is None:
            raise BackendUnavailable("this daemon has no history store")
        return self.services.store

    def auth(self) -> AuthService:
        if self.services.auth is None:
            raise BackendUnavailable("this daemon has no users backend (gateway role not run)")
        return self.services.auth

    def orderbook(self) -> OrderbookRole:
        """The in-process orderbook role, which alone can change the tracked pairs."""
        if self.services.orderbook is None:
            raise BackendUnavailable(
                "this daemon does not run the orderbook role: start or stop tracking pairs "
                "on the daemon that does",
                hint="kms daemon run --roles orderbook,...")
        return self.services.orderbook


def gateway_of(conn: HTTPConnection) -> Gateway:
    """The state of the app serving ``conn`` (a request or a WebSocket)."""
    gateway: Gateway = conn.app.state.gateway
    return gateway


async def gateway(conn: HTTPConnection) -> Gateway:
    return gateway_of(conn)


async def history_store(conn: HTTPConnection) -> HistoryStore:
    return gateway_of(conn).store()


async def auth_service(conn: HTTPConnection) -> AuthService:
    return gateway_of(conn).auth()


bearer = HTTPBearer(auto_error=False, description="a token from POST /api/users/login")


async def claims(
    conn: HTTPConnection,
    creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Claims:
    """The caller's verified claims (401 without a valid bearer token, or with one that was
    revoked or whose account is disabled or gone)."""
    if creds is None:
        raise AuthError("missing bearer token: send Authorization: Bearer <token>")
    gateway = gateway_of(conn)
    verified = gateway.tokens.verify(creds.credentials)
    conn.scope[USER_KEY] = verified.user_id
    conn.scope[PRINCIPAL_KEY] = await gateway.auth().authorize(verified)
    return verified


async def caller(conn: HTTPConnection, verified: Annotated[Claims, Security(claims)]) -> Principal:
    """Who the token speaks for now, with the account's current role."""
    principal: Principal = conn.scope[PRINCIPAL_KEY]
    return principal


async def admin(conn: HTTPConnection, verified: Annotated[Claims, Security(claims)]) -> Principal:
    """The caller, who must be an admin (403 naming the route otherwise)."""
    principal: Principal = conn.scope[PRINCIPAL_KEY]
    method = conn.scope.get("method", "WS")
    route = conn.scope.get("route")
    path = getattr(route, "path", None) or conn.url.path
    principal.require_admin(f"{method} {path}")
    return principal


#: this app's state (services, hub, caches)
State = Annotated[Gateway, Depends(gateway)]
#: the history store (503 in a process without one)
Store = Annotated[HistoryStore, Depends(history_store)]
#: the users and tokens service (503 in a process without one)
Auth = Annotated[AuthService, Depends(auth_service)]
#: the caller's claims: a route with this parameter needs a bearer token
Authed = Annotated[Claims, Security(claims)]
#: the caller with the account's current role: any valid token
Caller = Annotated[Principal, Security(caller)]
#: the caller, an admin: a reader's token is a 403
Admin = Annotated[Principal, Security(admin)]
#: a pair in the path, in any spelling :func:`krakenstream.core.pairs.normalize_pair` reads
#: (the schema declares that syntax; the route refuses anything else with its own message)
Pair = Annotated[str, Path(description="a pair: ETH-USD, eth-usd or ETH%2FUSD",
                           json_schema_extra={"pattern": PAIR_INPUT_PATTERN})]
#: a pair or a pattern in the path (:func:`krakenstream.core.pairs.normalize_selector`)
Selector = Annotated[str, Path(description="a pair (ETH-USD, eth-usd or ETH%2FUSD) or a "
                               "pattern (*-USD, BTC-*, *)",
                               json_schema_extra={"pattern": SELECTOR_INPUT_PATTERN})]
