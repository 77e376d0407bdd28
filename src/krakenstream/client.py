"""The HTTP client of a krakenstream daemon's gateway, local or remote; the CLI speaks only this.
(Long on purpose: one method per endpoint and the one boundary where failures become our
errors; split by endpoint, that boundary would be in several places.)

One method per endpoint of the gateway (the README's "HTTP gateway" lists them). This module
is the boundary where transport failures and HTTP error answers become our own errors, so
callers handle one exception tree (:mod:`krakenstream.errors`) and print the gateway's own message,
by the table both ends import (:mod:`krakenstream.wire`):

    401 → AuthError (hint ``kms login``)         403 → Forbidden (an AuthError: the role)
    404 → NotFound       409 → Conflict          413/422 → InputError
    429 → Throttled(retry_after)                 503 → BackendUnavailable
    no connection → BackendUnavailable

History is streamed, never held whole: :meth:`KmsClient.history` parses NDJSON one line at a
time and :meth:`KmsClient.history_raw` hands the body on chunk by chunk, so a 10,000-snapshot
export costs one chunk of memory. :meth:`KmsClient.stream` follows the live snapshots of
several pairs over WebSockets (one connection per pair) and reconnects with capped, jittered
backoff when the daemon goes away, saying so with a :class:`Reconnecting` event.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
import orjson
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from . import __version__, wire
from .core.backoff import backoff
from .errors import (
    AuthError,
    BackendUnavailable,
    InputError,
    KmsError,
    Throttled,
)
from .redact import redact_url
from .wire import error_class, own_hint

log = logging.getLogger(__name__)

_USER_AGENT = f"krakenstream-cli/{__version__}"

#: seconds to connect and between two reads of an answer
DEFAULT_TIMEOUT = 10.0
#: events buffered between the WebSocket readers and the consumer of :meth:`KmsClient.stream`;
#: when full the readers wait (the gateway then holds the backlog, and cuts us off with 1013 if
#: we stay behind, after which we reconnect): memory stays bounded on both sides
STREAM_QUEUE = 256
#: the largest WebSocket message accepted (a 1000-level snapshot is about 60 kB)
MAX_MESSAGE = 4 * 2**20

HistoryFormat = Literal["json", "ndjson", "csv", "parquet"]
Layout = Literal["wide", "levels"]
Order = Literal["desc", "asc"]

# -- stream events ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnapshotEvent:
    """A new snapshot of ``pair`` (``data`` is ``Snapshot.to_dict()``)."""

    pair: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """The daemon's feed changed state for ``pair`` (live, resyncing, stale, error...)."""

    pair: str
    state: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Connected:
    """The WebSocket for ``pair`` is open (first time or after a reconnect)."""

    pair: str


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The WebSocket for ``pair`` is down; the next attempt is ``delay`` seconds away."""

    pair: str
    reason: str
    delay: float
    attempt: int


StreamEvent = SnapshotEvent | StatusEvent | Connected | Reconnecting


def parse_stream_message(pair: str, message: str | bytes) -> StreamEvent | None:
    """One gateway WebSocket message as an event, or None if it is not one we know.

    Unknown message types are skipped, not fatal: a newer gateway may send more kinds.
    """
    try:
        obj = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    kind = obj.get("type")
    if kind == "snapshot" and isinstance(obj.get("data"), dict):
        data: dict[str, Any] = obj["data"]
        return SnapshotEvent(str(data.get("pair") or pair), data)
    if kind == "status" and isinstance(obj.get("state"), str):
        reason = obj.get("reason")
        return StatusEvent(
            str(obj.get("pair") or pair), obj["state"], reason if isinstance(reason, str) else None
        )
    return None


# -- errors -----------------------------------------------------------------------------------


def _error_body(body: bytes) -> tuple[str | None, str | None]:
    """The gateway's ``{"error", "hint"}``; tolerates FastAPI's ``{"detail": ...}`` too. A
    hint that is only its code's default (:data:`krakenstream.wire.HINTS`, written for the
    HTTP API) is dropped, so the exception's own (``kms login``) stands."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return (text[:200] or None), None
    if not isinstance(obj, dict):
        return None, None
    message = obj.get("error") or obj.get("message")
    if message is None and "detail" in obj:
        detail = obj["detail"]
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            message = detail[0].get("msg")
        else:
            message = detail
    hint = obj.get("hint")
    return (str(message) if message else None), own_hint(obj.get("code"),
                                                         str(hint) if hint else None)


def _retry_after(headers: Mapping[str, str]) -> int:
    value = headers.get("retry-after", "")
    try:
        return max(1, int(float(value)))
    except ValueError:
        return 1


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, url: str
) -> KmsError:
    """The error an HTTP error answer stands for, carrying the gateway's own sentence."""
    message, hint = _error_body(body)
    if status == 429:
        return Throttled(message or "too many attempts", retry_after=_retry_after(headers))
    cls = error_class(status)
    if cls is not None:
        return cls(message or f"the daemon answered {status} for {url}", hint=hint)
    if status >= 500:
        return KmsError(
            f"the daemon failed on {url} ({status}): {message or 'no details'}",
            hint=hint or "see the daemon's log",
        )
    return KmsError(f"unexpected answer {status} from {url}: {message or 'no details'}",
                    hint=hint)


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def check_base_url(url: str) -> str:
    """A daemon URL, ``http(s)://HOST:PORT[/prefix]`` without the trailing slash, or
    :class:`InputError`.

    A user or password in it is refused rather than carried: the gateway never reads one (the
    token authenticates), and the URL is shown in every error message and used as the key
    of the credentials file.
    """
    hint = "give http://HOST:PORT, e.g. http://127.0.0.1:3000"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 -- raises ValueError for a port that is not 0..65535
    except ValueError as exc:
        raise InputError(f"not a daemon URL: {redact_url(url)!r} ({exc})", hint=hint) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"not a daemon URL: {redact_url(url)!r}", hint=hint)
    if parts.username is not None or parts.password is not None:
        raise InputError(f"a daemon URL carries no user or password: {redact_url(url)!r}",
                         hint="log in with kms login; the token authenticates")
    return url.strip().rstrip("/")


def quote_pair(pair: str) -> str:
    """A pair as one path segment: ``ETH/USD`` → ``ETH%2FUSD``."""
    return quote(pair.strip(), safe="")


# -- the client -------------------------------------------------------------------------------


class KmsClient:
    """A daemon's gateway at ``base_url``; ``token`` authenticates the calls that need it.

    Synchronous (httpx) for request/answer calls; :meth:`stream` is asynchronous. Use it as a
    context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.token = token
        self.timeout = timeout
        # a proxy from the environment is for remote daemons: loopback is never proxied
        self._local = _is_loopback(self.base_url)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            trust_env=not self._local,
            headers={"User-Agent": _USER_AGENT, "Accept": "application/json"},
        )

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KmsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def start_hint(self) -> str:
        if self._local:
            return "kms daemon start"
        return "is a daemon running there? check --server or KMS_SERVER"

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def busy_hint(self) -> str:
        """For a daemon that took the connection but not the time to answer: it runs, so
        starting one is no help."""
        if self._local:
            return "it is running but busy: try again; kms daemon status and its log say more"
        return "it is running but busy: try again, or check its log"

    def unreachable(self, exc: BaseException) -> BackendUnavailable:
        """A transport failure as the one error the CLI shows for it."""
        hint = self.start_hint
        if isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
            message = f"cannot reach the daemon at {self.base_url}"
        elif isinstance(exc, httpx.TimeoutException | TimeoutError):
            message = f"the daemon at {self.base_url} did not answer within {self.timeout:g} s"
            if not isinstance(exc, httpx.ConnectTimeout):  # connected: something listens
                hint = self.busy_hint
        else:
            message = f"the connection to the daemon at {self.base_url} failed: {exc}"
        return BackendUnavailable(message, hint=hint)

    def _check(self, resp: httpx.Response) -> None:
        if resp.status_code >= 400:
            raise error_from_response(
                resp.status_code, resp.headers, resp.content, f"{resp.request.method} "
                f"{resp.request.url.raw_path.decode('ascii', 'replace').split('?')[0]}"
            )

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The JSON object the gateway answers (every route answers one)."""
        try:
            resp = self._http.request(
                method, path, json=json, params=_params(params), headers=self._auth_headers()
            )
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from exc
        self._check(resp)
        try:
            out = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            out = None
        if not isinstance(out, dict):
            raise KmsError(
                f"the daemon at {self.base_url} sent a malformed answer to {method} {path}")
        return out

    @contextmanager
    def _stream(self, path: str, params: Mapping[str, Any]) -> Iterator[httpx.Response]:
        """An answer whose body is read as it arrives; transport failures mapped throughout."""
        try:
            with self._http.stream(
                "GET", path, params=_params(params), headers=self._auth_headers()
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    self._check(resp)
                yield resp
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from exc

    # -- users ------------------------------------------------------------------------------

    def register(self, email: str, password: str) -> dict[str, Any]:
        """Create an account: ``{"id", "email", "created_at"}``."""
        return self._call("POST", "/api/users/register",
                          json={"email": email, "password": password})

    def login(self, email: str, password: str) -> dict[str, Any]:
        """``{"token", "token_type", "expires_at"}``; the client keeps using the new token."""
        out = self._call(
            "POST", "/api/users/login", json={"email": email, "password": password}
        )
        if not isinstance(out.get("token"), str):
            raise KmsError(f"the daemon at {self.base_url} answered a login without a token")
        self.token = out["token"]
        return out

    def me(self) -> dict[str, Any]:
        """``{"id", "email", "created_at", "role", "disabled"}`` of the token's account."""
        return self._call("GET", "/api/users/me")

    def logout(self) -> dict[str, Any]:
        """Revoke the client's token on the server (every gateway): ``{"revoked": true}``."""
        return self._call("POST", "/api/users/logout")

    # -- accounts (an admin's token) ------------------------------------------------------------

    def users(self) -> list[dict[str, Any]]:
        """Every account, oldest first."""
        users = self._call("GET", "/api/users").get("users")
        if not isinstance(users, list):
            raise KmsError(f"the daemon at {self.base_url} answered without a user list")
        return users

    def add_user(self, email: str, password: str, role: str = "reader") -> dict[str, Any]:
        return self._call("POST", "/api/users",
                          json={"email": email, "password": password, "role": role})

    def change_user(self, user_id: int, action: str) -> dict[str, Any]:
        """``action``: promote, demote, disable or enable; the account as it is now."""
        if action not in ("promote", "demote", "disable", "enable"):
            raise ValueError(f"unknown account action {action!r}")
        return self._call("POST", f"/api/users/{int(user_id)}/{action}")

    def delete_user(self, user_id: int) -> dict[str, Any]:
        return self._call("DELETE", f"/api/users/{int(user_id)}")

    # -- analysis ---------------------------------------------------------------------------

    def latest(self, pair: str) -> dict[str, Any]:
        """The newest stored snapshot of ``pair`` (``Snapshot.to_dict()``)."""
        return self._call("GET", f"/api/analysis/latest/{quote_pair(pair)}")

    def summary(
        self,
        pair: str,
        *,
        since: str | int | None = None,
        until: str | int | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """The analysis of ``pair``'s stored snapshots in a window (``core.analysis``)."""
        params = {k: v for k, v in (("since", since), ("until", until), ("limit", limit))
                  if v is not None}
        return self._call("GET", f"/api/analysis/summary/{quote_pair(pair)}", params=params)

    def history(
        self,
        pair: str,
        *,
        since: str | int | None = None,
        until: str | int | None = None,
        limit: int | None = None,
        order: Order = "desc",
    ) -> Iterator[dict[str, Any]]:
        """Snapshots (``Snapshot.to_dict()``), parsed one NDJSON line at a time.

        Nothing is sent until the first item is asked for; errors (an unknown pair, a bad
        range) are raised then.
        """
        params = {"since": since, "until": until, "limit": limit, "order": order,
                  "format": "ndjson"}
        with self._stream(f"/api/analysis/history/{quote_pair(pair)}", params) as resp:
            for line in resp.iter_lines():
                if line.strip():
                    try:
                        item = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        item = None
                    if not isinstance(item, dict):
                        raise KmsError(f"the daemon at {self.base_url} sent a malformed "
                                       f"history line: {line[:80]!r}")
                    yield item

    def history_raw(
        self,
        pair: str,
        *,
        format: HistoryFormat,
        since: str | int | None = None,
        until: str | int | None = None,
        limit: int | None = None,
        order: Order = "desc",
        layout: Layout | None = None,
        depth: int | None = None,
    ) -> Iterator[bytes]:
        """The history body in ``format`` (json, ndjson, csv or parquet), chunk by chunk, as
        sent. CSV comes in the wide ``layout`` unless ``levels`` is asked; wide CSV and
        Parquet have ``depth`` levels a side (the daemon's ``kraken.depth`` by default)."""
        params = {"since": since, "until": until, "limit": limit, "order": order,
                  "format": format, "layout": layout, "depth": depth}
        with self._stream(f"/api/analysis/history/{quote_pair(pair)}", params) as resp:
            yield from resp.iter_bytes()

    def bars(
        self,
        pair: str,
        *,
        every: str = "1m",
        since: str | int | None = None,
        until: str | int | None = None,
    ) -> dict[str, Any]:
        """Bars of ``pair`` per interval ``every`` (``core.bars``): ``{"pair", "every",
        "every_ms", "bars": [...]}``, oldest first, from the store and the archive alike."""
        params = {"every": every, "since": since, "until": until}
        return self._call("GET", f"/api/analysis/bars/{quote_pair(pair)}", params=params)

    def bars_csv(
        self,
        pair: str,
        *,
        every: str = "1m",
        since: str | int | None = None,
        until: str | int | None = None,
    ) -> Iterator[bytes]:
        """The bars as CSV (a header, then one line a bar), chunk by chunk, as sent."""
        params = {"every": every, "since": since, "until": until, "format": "csv"}
        with self._stream(f"/api/analysis/bars/{quote_pair(pair)}", params) as resp:
            yield from resp.iter_bytes()

    # -- order books and pairs --------------------------------------------------------------

    def orderbook(self, pair: str, depth: int | None = None) -> dict[str, Any]:
        return self._call("GET", f"/api/orderbook/{quote_pair(pair)}", params={"depth": depth})

    def pairs(self) -> list[dict[str, Any]]:
        """Tracked pairs with their feed state and counters."""
        pairs = self._call("GET", "/api/pairs").get("pairs")
        if not isinstance(pairs, list):
            raise KmsError(f"the daemon at {self.base_url} sent a malformed pair list")
        return pairs

    def track(self, pair: str) -> dict[str, Any]:
        """Start tracking ``pair``: ``{"pair", "state"}``."""
        return self._call("POST", "/api/pairs", json={"pair": pair})

    def untrack(self, pair: str) -> dict[str, Any]:
        return self._call("DELETE", f"/api/pairs/{quote_pair(pair)}")

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    # -- live stream ------------------------------------------------------------------------

    def stream_url(self, pair: str) -> str:
        scheme = "wss" if self.base_url.startswith("https:") else "ws"
        return f"{scheme}{self.base_url[self.base_url.index(':'):]}/api/stream/{quote_pair(pair)}"

    async def stream(
        self,
        pairs: Sequence[str],
        *,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        queue_size: int = STREAM_QUEUE,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Live events of ``pairs``, one WebSocket each, until the caller stops iterating.

        Failing to connect the first time raises :class:`BackendUnavailable`; once connected,
        a lost connection (the daemon restarting) is retried for ever with capped jittered
        backoff, announced by a :class:`Reconnecting` event per attempt. A rejected token or
        a malformed pair raises (:class:`AuthError`, :class:`InputError`): retrying would
        not help.
        """
        queue: asyncio.Queue[StreamEvent | BaseException] = asyncio.Queue(queue_size)
        tasks = [
            asyncio.create_task(
                self._pump(pair, queue, backoff_initial, backoff_max), name=f"kms-stream-{pair}"
            )
            for pair in pairs
        ]
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _pump(
        self,
        pair: str,
        queue: asyncio.Queue[StreamEvent | BaseException],
        backoff_initial: float,
        backoff_max: float,
    ) -> None:
        try:
            await self._follow(pair, queue, backoff_initial, backoff_max)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the consumer, who raises it
            await queue.put(exc)

    async def _follow(
        self,
        pair: str,
        queue: asyncio.Queue[StreamEvent | BaseException],
        backoff_initial: float,
        backoff_max: float,
    ) -> None:
        url = self.stream_url(pair)
        headers = self._auth_headers()
        rng = random.Random()
        delays = backoff(backoff_initial, backoff_max, rng=rng)
        connected_once = False
        attempt = 0
        while True:
            try:
                async with ws_connect(
                    url,
                    additional_headers=headers,
                    open_timeout=self.timeout,
                    max_size=MAX_MESSAGE,
                    user_agent_header=_USER_AGENT,
                    proxy=None if self._local else True,
                ) as ws:
                    connected_once, attempt = True, 0
                    delays = backoff(backoff_initial, backoff_max, rng=rng)
                    await queue.put(Connected(pair))
                    async for message in ws:
                        event = parse_stream_message(pair, message)
                        if event is None:
                            log.debug("stream %s: skipped an unknown message", pair)
                        else:
                            await queue.put(event)
                reason = "the daemon closed the stream"
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status != 503:
                    raise error_from_response(
                        status, exc.response.headers, bytes(exc.response.body or b""), url
                    ) from exc
                reason = "the daemon is not ready (503)"
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                why = exc.rcvd.reason if exc.rcvd is not None else ""
                if code in (wire.BAD_TOKEN, wire.TOKEN_REVOKED):
                    raise AuthError(why or "the daemon rejected the token") from exc
                if code == wire.BAD_PAIR:
                    raise InputError(why or f"the daemon refused the pair {pair!r}") from exc
                if code == wire.TOO_SLOW:
                    reason = "this terminal fell behind; the daemon cut the stream"
                elif code == wire.TOO_MANY_STREAMS:
                    reason = f"the daemon refused the stream: {why}"
                elif code == wire.GOING_AWAY:
                    reason = "the daemon is shutting down"
                else:
                    reason = f"the connection dropped ({code})"
            except (OSError, TimeoutError, WebSocketException) as exc:
                if not connected_once:
                    raise self.unreachable(exc) from exc
                reason = "connection refused" if isinstance(
                    exc, ConnectionRefusedError) else f"{type(exc).__name__}: {exc}"
            attempt += 1
            delay = next(delays)
            await queue.put(Reconnecting(pair, reason, delay, attempt))
            await asyncio.sleep(delay)


def _params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Query parameters without the unset ones."""
    if params is None:
        return None
    return {k: v for k, v in params.items() if v is not None}
