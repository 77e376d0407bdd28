"""Query parameters several routes share: time windows, and the bounds that are settings.

``since``/``until`` are read by :func:`krakenstream.core.times.parse_time` (epoch milliseconds
or seconds, or ISO 8601; no durations: a query has no "now"), refused with a message naming
the parameter.

Two bounds are settings of the process: ``limit`` is at most ``store.history_limit`` (the
store holds no more), ``depth`` at most ``kraken.depth`` (the books hold no more). FastAPI reads
a parameter's bounds from the route's signature once, when the module is imported, so a bound
that differs per app cannot be written there: :data:`HistoryLimit`, :data:`NewestLimit` and
:data:`Depth` are dependencies that check the app's value (on ``app.state``), and
:func:`document_maxima` writes the same value into the app's OpenAPI document, where clients
and ``/docs`` read it. The answer to a value over the bound is the one pydantic gives for a
bound in the signature: 422, ``limit: Input should be less than or equal to N``.
"""

# no "from __future__ import annotations": FastAPI reads these signatures at runtime

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Query
from starlette.requests import HTTPConnection

from ...core import times
from ...errors import InputError

#: schema key naming the setting a parameter's maximum is (replaced by document_maxima)
MAXIMUM_OF = "x-kms-maximum-of"
#: schema key naming the setting a body field's minLength is (replaced by document_maxima)
MIN_LENGTH_OF = "x-kms-min-length-of"
HISTORY_LIMIT = "store.history_limit"
KRAKEN_DEPTH = "kraken.depth"
MIN_PASSWORD_LENGTH = "auth.min_password_length"

#: a time in a query, as the schema declares it: epoch ms or s, or RFC 3339 (ISO 8601)
_TIME_SCHEMA = {"anyOf": [{"type": "string", "pattern": times.EPOCH_INPUT_PATTERN},
                          {"type": "string", "format": "date-time"}]}
Since = Annotated[str | None, Query(description="ISO 8601, epoch ms or epoch s",
                                    json_schema_extra=_TIME_SCHEMA)]
Until = Annotated[str | None, Query(description="ISO 8601, epoch ms or epoch s",
                                    json_schema_extra=_TIME_SCHEMA)]


def parse_time(name: str, text: str | None) -> int | None:
    """``since``/``until`` (:func:`krakenstream.core.times.parse_time`: epoch milliseconds or
    seconds, or ISO 8601, no durations: a query has no "now") as epoch milliseconds."""
    if text is None:
        return None
    try:
        return times.parse_time(text)
    except times.BadTime:
        raise InputError(
            f"{name}: expected ISO 8601 such as 2025-11-25T17:00:00Z or epoch milliseconds, "
            f"got {text[:64]!r}",
            hint=f"e.g. {name}=2025-11-25T17:00:00Z, {name}=1764090000000 (epoch ms) or "
                 f"{name}=1764090000 (epoch s)",
        ) from None


def _at_most(conn: HTTPConnection, setting: str, name: str, value: int | None) -> int | None:
    maximum: int = conn.app.state.gateway.maxima[setting]
    if value is not None and value > maximum:
        raise InputError(f"{name}: Input should be less than or equal to {maximum}")
    return value


def _bounded(setting: str, **query: Any) -> Any:
    """``Query(ge=1, ...)`` whose maximum, a setting, document_maxima fills in."""
    return Query(ge=1, json_schema_extra={MAXIMUM_OF: setting}, **query)


async def history_limit(
    conn: HTTPConnection,
    limit: Annotated[int | None, _bounded(HISTORY_LIMIT)] = None,
) -> int | None:
    return _at_most(conn, HISTORY_LIMIT, "limit", limit)


async def newest_limit(
    conn: HTTPConnection,
    limit: Annotated[int | None, _bounded(HISTORY_LIMIT,
                                          description="the newest N snapshots")] = None,
) -> int | None:
    return _at_most(conn, HISTORY_LIMIT, "limit", limit)


async def book_depth(
    conn: HTTPConnection,
    depth: Annotated[int | None, _bounded(KRAKEN_DEPTH)] = None,
) -> int | None:
    return _at_most(conn, KRAKEN_DEPTH, "depth", depth)


#: ``limit``: 1 to ``store.history_limit`` snapshots
HistoryLimit = Annotated[int | None, Depends(history_limit)]
#: ``limit`` counted from the newest end (the summary's window)
NewestLimit = Annotated[int | None, Depends(newest_limit)]
#: ``depth``: 1 to ``kraken.depth`` levels a side
Depth = Annotated[int | None, Depends(book_depth)]


def maxima_of(history_limit: int, kraken_depth: int, min_password_length: int) -> dict[str, int]:
    """The values the bounded parameters and fields are checked and documented against."""
    return {HISTORY_LIMIT: history_limit, KRAKEN_DEPTH: kraken_depth,
            MIN_PASSWORD_LENGTH: min_password_length}


def document_maxima(document: dict[str, Any], maxima: Mapping[str, int]) -> dict[str, Any]:
    """Write each bounded parameter's maximum into an OpenAPI ``document`` (in place), where a
    bound in the signature would have put it: beside ``minimum`` in its integer schema."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for param in operation.get("parameters", ()):
                schema = param.get("schema", {})
                setting = schema.pop(MAXIMUM_OF, None)
                if setting is None:
                    continue
                for branch in schema.get("anyOf", [schema]):
                    if branch.get("type") == "integer":
                        branch["maximum"] = maxima[setting]
    for model in document.get("components", {}).get("schemas", {}).values():
        for field in model.get("properties", {}).values():
            setting = field.pop(MIN_LENGTH_OF, None)
            if setting is not None:
                field["minLength"] = maxima[setting]
    return document
