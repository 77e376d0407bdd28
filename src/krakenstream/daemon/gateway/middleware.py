"""What wraps every request: observation (count, time, one log line, a bug as a logged 500) and
the body limit. Both are pure ASGI middlewares: Starlette's ``BaseHTTPMiddleware`` costs a
task and a memory stream per request.

* :class:`ObserveMiddleware` counts and times each request by route template, writes the one
  log line per request, and turns a bug into a logged 500;
* :class:`BodyLimitMiddleware` refuses bodies over ``gateway.max_body_bytes`` with a JSON 413,
  by ``Content-Length`` before reading and by counting a streamed body as it comes
  (Starlette's own limiter answers in plain text, which the contract does not allow).

HEAD and OPTIONS are :mod:`.methods`.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import KmsError
from ..metrics import Metrics
from .errors import PayloadTooLarge, error_response, kms_error_response

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

