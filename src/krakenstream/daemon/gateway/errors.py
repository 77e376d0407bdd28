"""Every error the gateway answers, as ``{"error", "code", "hint"}`` JSON with its status.

Our exceptions get the status and code of :mod:`krakenstream.wire`'s error table (the table the
client reads answers with); FastAPI's own validation errors, unknown routes and methods, and
a body over the limit are rendered the same way, so a client never meets another shape. The
one 500 is a bug: logged with its cause, answered ``internal`` without it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ...errors import KmsError, Overloaded, Throttled
from ...wire import STATUS_CODES, classify, hint_for
from .methods import allowed_methods

log = logging.getLogger("krakenstream.gateway")


# the shape of every error answer, for /docs (no docstring: it would become the schema's
# description, and the document is held as it was)
class ErrorOut(BaseModel):
    error: str
    code: str
    hint: str | None = None  # always sent (wire.HINTS when the error has none of its own)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=``: the error statuses it may answer, each an :class:`ErrorOut`."""
    return {s: {"model": ErrorOut} for s in statuses}


class PayloadTooLarge(StarletteHTTPException):
    """A request body over the limit. An HTTPException so FastAPI's body reader lets it
    through as it is (it turns any other exception raised while reading into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def error_response(
    status: int, code: str, message: str, *, hint: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"error": message, "code": code, "hint": hint_for(code, hint)}
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


def kms_error_response(exc: KmsError) -> Response:
    status, code = classify(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, Throttled | Overloaded):
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


async def on_kms_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KmsError)
    return kms_error_response(exc)


async def on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid", validation_message(exc))


async def on_http(request: Request, exc: Exception) -> Response:
    """The framework's own answers (no route, wrong method, body too large, unreadable)."""
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
    headers = exc.headers
    if exc.status_code == 405:
        # every method of the path, not only those of the first route that has the path
        allowed = allowed_methods(request.app.router.routes, request.url.path)
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
    return error_response(exc.status_code, code, message, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KmsError, on_kms_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
