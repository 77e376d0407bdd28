"""The gateway's HTTP plumbing: errors as JSON, request observation, body limit, parameters.

Everything here is shared by every route, so it lives apart from the routes themselves:

* the handlers that render every error, FastAPI's own validation errors and unknown routes
  included, as ``{"error", "code", "hint"?}``, with the status and code that
  :mod:`krakenstream.wire`'s error table gives (the table the client reads answers with);
* :class:`ObserveMiddleware`, a pure ASGI middleware (Starlette's ``BaseHTTPMiddleware`` costs
  a task and a memory stream per request) that counts and times each request by route
  template, writes the one log line per request, and turns a bug into a logged 500;
* :class:`BodyLimitMiddleware`, which refuses bodies over ``gateway.max_body_bytes`` with a
  JSON 413, by ``Content-Length`` before reading and by counting a streamed body as it comes
  (Starlette's own limiter answers in plain text, which the contract does not allow);
* :func:`parse_time` for ``since``/``until``, :class:`VerifiedTokens` (verdicts of tokens
  already checked) and :class:`RedactTokens` for uvicorn's log.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, unquote_plus

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core import times
from ..errors import (
    InputError,
    KmsError,
    Throttled,
)
from ..users.tokens import Claims
from ..wire import STATUS_CODES, classify
from .metrics import Metrics

log = logging.getLogger("krakenstream.gateway")

#: scope key under which the auth dependency leaves the caller's user id for the log line
USER_KEY = "kms.user_id"
#: route label of requests that matched no route (keeps the metric's label set bounded)
UNMATCHED = "unmatched"
#: methods counted under their own name in the metrics; a client may send any token as a
#: method, and one label value each would grow the registry without bound: the rest are OTHER
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: what a logged path keeps as it is (RFC 3986 path characters, and "%")
_PATH_SAFE = "/-._~!$&'()*+,;=:@%"


class PayloadTooLarge(StarletteHTTPException):
    """A request body over the limit. An HTTPException so FastAPI's body reader lets it
    through as it is (it turns any other exception raised while reading into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def error_response(
    status: int, code: str, message: str, *, hint: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"error": message, "code": code}
    if hint:
        body["hint"] = hint
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


def kms_error_response(exc: KmsError) -> Response:
    status, code = classify(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, Throttled):
        headers["Retry-After"] = str(exc.retry_after)
    elif status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 500:
        log.error("unexpected %s: %s", type(exc).__name__, exc.message)
        return error_response(500, "internal", "internal error")
    return error_response(status, code, exc.message, hint=exc.hint, headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's list of validation errors as one line naming each field."""
    parts: list[str] = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if err.get("type") == "json_invalid":
            parts.append("the request body is not valid JSON")
            continue
        if loc == ["body"] and err.get("type") in ("model_attributes_type", "dict_type"):
            # FastAPI parses a body as JSON only under a JSON content type; else it stays bytes
            raw = isinstance(err.get("input"), bytes | bytearray)
            parts.append("the request body must be JSON, sent as application/json" if raw
                         else "the request body must be a JSON object")
            continue
        field = ".".join(loc[1:]) if len(loc) > 1 else (loc[0] if loc else "request")
        parts.append(f"{field}: {err.get('msg', 'invalid')}")
    return "; ".join(dict.fromkeys(parts)) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    async def on_kms_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, KmsError)
        return kms_error_response(exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, "invalid", validation_message(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:
            # FastAPI's answer to a JSON body its decoder could not even read (not UTF-8, or
            # a RecursionError on "[[[[..."); the contract has no 400: bad input is a 422
            return error_response(422, "invalid", "the request body cannot be read as JSON "
                                  "(not UTF-8, or nested too deeply)")
        code = STATUS_CODES.get(exc.status_code, "invalid")
        if exc.status_code == 404:
            message = f"no such route: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, code, message, headers=exc.headers)

    app.add_exception_handler(KmsError, on_kms_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


def log_path(scope: Scope) -> str:
    """The request's path for a log line: decoded by the server, so re-quote what could
    break the line or forge another (``%0A``, spaces, control and non-ASCII characters)."""
    return quote(scope["path"], safe=_PATH_SAFE)


def route_label(scope: Scope) -> str:
    route = scope.get("route")
    label = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(label) if label else UNMATCHED


class ObserveMiddleware:
    """Counts, times and logs each request; a bug becomes a logged 500 JSON answer.

    The log line holds the method, the path without its query string (a WebSocket token may
    be there) and re-quoted (see :func:`log_path`), the status, the duration and the user id
    once authenticated: never a header, a token or a body.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        close_code: int | None = None
        started = False

        async def observed_send(message: Message) -> None:
            nonlocal status, started, close_code
            t = message["type"]
            if t == "http.response.start":
                status = message["status"]
                started = True
            elif t == "websocket.accept":
                status = 101
            elif t == "websocket.close":
                close_code = message.get("code", 1000)
                if not status:
                    status = 403  # closed before the handshake: the server answers 403
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except KmsError as exc:  # raised after the answer began (a backend failing mid-export)
            log.warning("request cut short: %s %s: %s", scope.get("method", "WS"),
                        log_path(scope), exc.message)
            if kind == "http" and not started:
                response = kms_error_response(exc)
                status = response.status_code
                await response(scope, receive, send)
        except Exception:
            log.exception("request failed: %s %s", scope.get("method", "WS"), log_path(scope))
            if kind == "http" and not started:
                await error_response(500, "internal", "internal error")(scope, receive, send)
            status = 500
        finally:
            elapsed = time.perf_counter() - start
            route = route_label(scope)
            method = scope.get("method", "WS") if kind == "http" else "WS"
            counted = method if method in _METHODS or kind != "http" else "OTHER"
            self.metrics.http_requests.labels(counted, route, str(status)).inc()
            self.metrics.http_duration.labels(route).observe(elapsed)
            user = scope.get(USER_KEY)
            if kind == "http":
                log.info("http method=%s path=%s status=%d ms=%.1f user=%s", method,
                         log_path(scope), status, elapsed * 1000, user if user else "-")
            else:
                log.info("ws path=%s status=%d close=%s ms=%.1f user=%s", log_path(scope),
                         status, close_code if close_code is not None else "-",
                         elapsed * 1000, user if user else "-")


class BodyLimitMiddleware:
    """JSON 413 for a body over ``limit`` bytes, declared or streamed; nothing is buffered."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    break  # the server refuses a malformed length before we get here
                if declared > limit:
                    exc = PayloadTooLarge(limit)
                    response = error_response(413, "too_large", str(exc.detail))
                    await response(scope, receive, send)
                    return
                break
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


# -- parameters --------------------------------------------------------------------------------

def parse_time(name: str, text: str | None) -> int | None:
    """``since``/``until`` (:func:`krakenstream.core.times.parse_time`: epoch milliseconds or
    ISO 8601, no durations: a query has no "now") as epoch milliseconds."""
    if text is None:
        return None
    try:
        return times.parse_time(text)
    except times.BadTime:
        raise InputError(
            f"{name}: expected ISO 8601 such as 2026-11-25T17:00:00Z or epoch milliseconds, "
            f"got {text[:64]!r}"
        ) from None


# -- logs --------------------------------------------------------------------------------------

_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)
#: one ``name=value`` of a query string, as uvicorn logs it (still percent-encoded)
_QUERY_PAIR = re.compile(r"([?&])([^=&\s\"'#]+)=([^&\s\"'#]*)")


def _redact_query_token(match: re.Match[str]) -> str:
    if unquote_plus(match.group(2)).lower() != "token":
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}=***"


class RedactTokens(logging.Filter):
    """uvicorn logs a WebSocket's path with its query string, where a token may travel:
    rewrite ``token=...`` to ``token=***`` before any handler sees the record. The name is
    matched once percent-decoded too, because Starlette decodes it before looking for
    ``token``: ``?%74oken=...`` authenticates just the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot format is not ours to fix
            return True
        if "=" in text:
            redacted = _QUERY_PAIR.sub(_redact_query_token, _TOKEN_IN_TEXT.sub(r"\1***", text))
            if redacted != text:
                record.msg = redacted
                record.args = None
        return True


def redact_uvicorn_logs() -> None:
    """Install :class:`RedactTokens` on uvicorn's loggers (once)."""
    for name in ("uvicorn.error", "uvicorn.access", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


# -- tokens ------------------------------------------------------------------------------------


class VerifiedTokens:
    """Tokens already verified, with their claims, until they expire: a bounded LRU.

    Verifying a token (HMAC, base64, three JSON decodes, claim checks) costs ~45 us, a fifth
    of a whole ``latest`` request, and a client sends the same token with every request. A
    token's verdict cannot change before it expires (its signature and claims are fixed; no
    token is revoked before its expiry in this system), so a verdict is kept until the
    token's ``exp``, for at most ``size`` tokens (least recently used dropped). Refusals are
    not kept: a forged or expired token is checked each time and costs what it always did.
    """

    def __init__(self, verify: Callable[[str], Claims], *, size: int = 4096,
                 clock: Callable[[], float] = time.time) -> None:
        self._verify = verify
        self._clock = clock
        self.size = size
        self._known: OrderedDict[str, tuple[float, Claims]] = OrderedDict()

    def verify(self, token: str) -> Claims:
        known = self._known.get(token)
        if known is not None:
            if known[0] > self._clock():
                self._known.move_to_end(token)
                return known[1]
            del self._known[token]
        claims = self._verify(token)
        self._known[token] = (claims.expires_at.timestamp(), claims)
        if len(self._known) > self.size:
            self._known.popitem(last=False)
        return claims
