"""The gateway's OpenAPI document: the operations, their parameters, bodies and answers.

Taken from ``/openapi.json`` before the gateway became a package (issue 11) and held since, so
a move of routes between modules cannot change the contract clients and ``/docs`` read. A
new route (dashboard, bars, admin) adds its row here: the table is the API at a glance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_support import settings_for
from krakenstream.daemon.gateway import create_app
from krakenstream.daemon.services import build_services

#: (method, path) → the names of its parameters, path and query
OPERATIONS: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/api/users/register"): frozenset(),
    ("POST", "/api/users/login"): frozenset(),
    ("GET", "/api/users/me"): frozenset(),
    ("POST", "/api/users/logout"): frozenset(),
    ("GET", "/api/users"): frozenset(),
    ("POST", "/api/users"): frozenset(),
    **{("POST", f"/api/users/{{user_id}}/{action}"): frozenset({"user_id"})
       for action in ("promote", "demote", "disable", "enable")},
    ("DELETE", "/api/users/{user_id}"): frozenset({"user_id"}),
    ("GET", "/api/analysis/latest/{pair}"): frozenset({"pair"}),
    ("GET", "/api/analysis/history/{pair}"): frozenset(
        {"pair", "since", "until", "limit", "order", "format", "layout", "depth"}),
    ("GET", "/api/analysis/summary/{pair}"): frozenset({"pair", "since", "until", "limit"}),
    ("GET", "/api/analysis/bars/{pair}"): frozenset({"pair", "every", "since", "until", "format"}),
    ("GET", "/api/orderbook/{pair}"): frozenset({"pair", "depth"}),
    ("GET", "/api/pairs"): frozenset(),
    ("POST", "/api/pairs"): frozenset(),
    ("DELETE", "/api/pairs/{pair}"): frozenset({"pair"}),
    ("GET", "/health"): frozenset(),
    ("GET", "/metrics"): frozenset(),
}

_ERR = "ErrorOut"
#: (method, path) → (request body model, {status: answer model, "" for an undeclared shape})
SHAPES: dict[tuple[str, str], tuple[str | None, dict[str, str]]] = {
    ("POST", "/api/users/register"): (
        "Credentials", {"201": "UserOut", "403": _ERR, "409": _ERR, "413": _ERR, "422": _ERR,
                        "429": _ERR, "503": _ERR}),
    ("POST", "/api/users/login"): (
        "Credentials",
        {"200": "TokenOut", "401": _ERR, "403": _ERR, "413": _ERR, "422": _ERR, "429": _ERR,
         "503": _ERR}),
    ("GET", "/api/users/me"): (None, {"200": "UserOut", "401": _ERR, "503": _ERR}),
    ("POST", "/api/users/logout"): (None, {"200": "Revoked", "401": _ERR, "503": _ERR}),
    ("GET", "/api/users"): (None, {"200": "UserList", "401": _ERR, "403": _ERR, "503": _ERR}),
    ("POST", "/api/users"): (
        "NewUser", {"201": "UserOut", "401": _ERR, "403": _ERR, "409": _ERR, "413": _ERR,
                    "422": _ERR, "503": _ERR}),
    **{("POST", f"/api/users/{{user_id}}/{action}"): (
        None, {"200": "UserOut", "401": _ERR, "403": _ERR, "404": _ERR, "422": _ERR,
               "503": _ERR, **conflict})
       for action, conflict in (("promote", {}), ("enable", {}), ("demote", {"409": _ERR}),
                                ("disable", {"409": _ERR}))},
    ("DELETE", "/api/users/{user_id}"): (
        None, {"200": "Deleted", "401": _ERR, "403": _ERR, "404": _ERR, "409": _ERR,
               "422": _ERR, "503": _ERR}),
    **{("GET", f"/api/analysis/{name}/{{pair}}"): (
        None, {"200": "", "401": _ERR, "404": _ERR, "422": _ERR, "503": _ERR})
       for name in ("latest", "history", "summary", "bars")},
    ("GET", "/api/orderbook/{pair}"): (
        None, {"200": "", "401": _ERR, "404": _ERR, "422": _ERR, "503": _ERR}),
    ("GET", "/api/pairs"): (None, {"200": "", "401": _ERR, "503": _ERR}),
    ("POST", "/api/pairs"): (
        "PairRequest",
        {"202": "", "401": _ERR, "403": _ERR, "409": _ERR, "413": _ERR, "422": _ERR,
         "503": _ERR}),
    ("DELETE", "/api/pairs/{pair}"): (
        None, {"200": "", "401": _ERR, "403": _ERR, "404": _ERR, "422": _ERR, "503": _ERR}),
    ("GET", "/health"): (None, {"200": ""}),
    ("GET", "/metrics"): (None, {"200": ""}),
}
#: operations open without a token
PUBLIC = {("POST", "/api/users/register"), ("POST", "/api/users/login"), ("GET", "/health"),
          ("GET", "/metrics")}


@pytest.fixture
async def document(kms_home: Path) -> AsyncIterator[dict[str, Any]]:
    settings = settings_for(kms_home, KMS_STORE_HISTORY_LIMIT="5000", KMS_KRAKEN_DEPTH="25")
    services = await build_services(settings, start=False)
    try:
        app = create_app(services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            r = await client.get("/openapi.json")
            assert r.status_code == 200
            yield r.json()
    finally:
        await services.close()


def _operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, item in doc["paths"].items()
            for method, op in item.items()}


def _ref(content: dict[str, Any]) -> str:
    schema = content.get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).rpartition("/")[2]


def test_the_operations_and_their_parameters(document: dict[str, Any]) -> None:
    ops = _operations(document)
    got = {key: frozenset(p["name"] for p in op.get("parameters", ())) for key, op in ops.items()}
    assert got == OPERATIONS


def test_bodies_answers_and_security(document: dict[str, Any]) -> None:
    for key, op in _operations(document).items():
        body = op.get("requestBody")
        answers = {status: _ref(r.get("content", {})) for status, r in op["responses"].items()}
        assert (_ref(body["content"]) if body else None, answers) == SHAPES[key], key
        assert (op.get("security") is None) == (key in PUBLIC), key
    assert document["components"]["securitySchemes"] == {"HTTPBearer": {
        "type": "http", "scheme": "bearer", "description": "a token from POST /api/users/login"}}


def test_bounds_follow_the_settings(document: dict[str, Any]) -> None:
    """``limit`` is at most ``store.history_limit``, ``depth`` at most ``kraken.depth``."""
    ops = _operations(document)

    def bounds(key: tuple[str, str], name: str) -> tuple[Any, Any]:
        (param,) = [p for p in ops[key]["parameters"] if p["name"] == name]
        (schema,) = [s for s in param["schema"]["anyOf"] if s.get("type") == "integer"]
        return schema.get("minimum"), schema.get("maximum")

    assert bounds(("GET", "/api/analysis/history/{pair}"), "limit") == (1, 5000)
    assert bounds(("GET", "/api/analysis/summary/{pair}"), "limit") == (1, 5000)
    assert bounds(("GET", "/api/orderbook/{pair}"), "depth") == (1, 25)
