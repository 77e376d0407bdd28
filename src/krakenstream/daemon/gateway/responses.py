"""Answers as ready responses: encoded once with orjson; the media types of the answers that
are not JSON, named once for the routes and for the schema.

A route returns a :class:`~starlette.responses.Response` it built, which skips FastAPI's
response validation and its slower encoder; the pydantic models the routes name in
``response_model`` and :func:`.errors.documented` describe the answers in ``/docs`` only. A
route that can answer in other formats declares them with :func:`formats`, so a client
reading ``/openapi.json`` knows every ``Content-Type`` it may get.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


#: the answers' media types by format (what ``Content-Type`` says)
MEDIA_TYPES = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
#: how the schema describes a body of each format that is not JSON
_BODY_SCHEMAS: dict[str, dict[str, Any]] = {
    "ndjson": {"type": "string", "description": "one JSON object a line"},
    "csv": {"type": "string", "description": "CSV with a header line"},
    "parquet": {"type": "string", "format": "binary", "description": "one Parquet file"},
}


def formats(*names: str, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=`` entry declaring the formats other than JSON its ``status``
    answer comes in (FastAPI keeps the JSON one beside them)."""
    content = {MEDIA_TYPES[n].partition(";")[0]: {"schema": _BODY_SCHEMAS[n]} for n in names}
    return {status: {"content": content}}
