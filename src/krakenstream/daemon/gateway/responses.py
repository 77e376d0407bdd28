"""Answers as ready responses: encoded once with orjson.

A route returns a :class:`~starlette.responses.Response` it built, which skips FastAPI's
response validation and its slower encoder; the pydantic models the routes name in
``response_model`` and :func:`.errors.documented` describe the answers in ``/docs`` only.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")
