"""Methods on every path: ``HEAD`` wherever ``GET`` is, ``OPTIONS`` and the ``Allow`` header.

FastAPI's routes take only the methods they declare, so a ``HEAD`` was a 405 on every route
and ``OPTIONS`` too; and when several routes share a path (``GET`` and ``POST /api/pairs``),
Starlette's 405 names only the methods of the first. :class:`MethodsMiddleware` answers
``HEAD`` through the ``GET`` route without its body and ``OPTIONS`` with a 204 naming every
method of the path (:func:`allowed_methods`), which the error handlers also put in a 405's
``Allow``. A pure ASGI middleware, like the others (see :mod:`.middleware`).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def allowed_methods(routes: Sequence[BaseRoute], path: str) -> list[str]:
    """Every method some route serves on ``path`` (HEAD wherever GET is, and OPTIONS), sorted;
    empty when no route has that path."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.path_regex.match(path):
            methods |= route.methods or set()
    if not methods:
        return []
    if "GET" in methods:
        methods.add("HEAD")
    methods.add("OPTIONS")
    return sorted(methods)


class MethodsMiddleware:
    """``HEAD`` as ``GET`` without its body; ``OPTIONS`` as 204 with ``Allow``.

    A HEAD runs the GET route and sends its status and headers (``Content-Length`` and
    ``Content-Type`` as GET would send them) and no body: a streamed export is produced and
    dropped, which costs what the GET would, within the same export limits.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        #: the app's own route list (read at request time: routes are added after this)
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = {m for r in self.routes if isinstance(r, Route)
                    and r.path_regex.match(scope["path"]) for m in r.methods or ()}
        if scope["method"] == "OPTIONS":
            allowed = allowed_methods(self.routes, scope["path"])
            if not allowed or "OPTIONS" in declared:  # no such path (404), or a route's own
                await self.app(scope, receive, send)
                return
            await Response(status_code=204, headers={"Allow": ", ".join(allowed)})(
                scope, receive, send)
            return
        if "HEAD" in declared or "GET" not in declared:  # a route's own HEAD, or a 405
            await self.app(scope, receive, send)
            return
        await self.app({**scope, "method": "GET"}, receive, _headers_only(send))


def _headers_only(send: Send) -> Send:
    """``send`` for a HEAD: the start as it is, then one empty final body, nothing else."""
    ended = False

    async def head_send(message: Message) -> None:
        nonlocal ended
        if message["type"] == "http.response.start":
            await send(message)
        elif message["type"] == "http.response.body" and not ended:
            ended = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return head_send
