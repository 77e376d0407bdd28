"""The gateway's OpenAPI document: the operations, their parameters, bodies and answers.

Taken from ``/openapi.json`` before the gateway became a package (issue 11) and held since, so
a move of routes between modules cannot change the contract clients and ``/docs`` read. A
new route (dashboard, bars, admin) adds its row here: the table is the API at a glance.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import email_validator
import httpx
import pytest

from gateway_support import Stack, login, settings_for, wait_snapshots
from krakenstream.core.bars import EVERY_INPUT_PATTERN
from krakenstream.core.pairs import PAIR_INPUT_PATTERN, SELECTOR_INPUT_PATTERN
from krakenstream.core.times import EPOCH_INPUT_PATTERN
from krakenstream.daemon.gateway import create_app
from krakenstream.daemon.services import build_services
from krakenstream.errors import InputError
from krakenstream.users.base import normalize_email

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
    settings = settings_for(kms_home, KMS_STORE_HISTORY_LIMIT="5000", KMS_KRAKEN_DEPTH="25",
                            KMS_AUTH_MIN_PASSWORD_LENGTH="10")
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


# -- what a schema-driven client needs to send nothing the gateway refuses for an unstated rule
# (issue 14 item 13): the pair syntax, the address and password rules, and the answers'
# media types


def test_every_pair_parameter_declares_the_pair_syntax(document: dict[str, Any]) -> None:
    """The pattern is core/pairs.py's own (what normalize_pair/normalize_selector read):
    a pair in the analysis and orderbook paths, a pair or a pattern where one is untracked
    or tracked."""
    declared = {}
    for key, op in _operations(document).items():
        for param in op.get("parameters", ()):
            if param["name"] == "pair":
                declared[key] = param["schema"].get("pattern")
    assert declared == {
        **{("GET", f"/api/analysis/{name}/{{pair}}"): PAIR_INPUT_PATTERN
           for name in ("latest", "history", "summary", "bars")},
        ("GET", "/api/orderbook/{pair}"): PAIR_INPUT_PATTERN,
        ("DELETE", "/api/pairs/{pair}"): SELECTOR_INPUT_PATTERN,
    }
    body = document["components"]["schemas"]["PairRequest"]["properties"]["pair"]
    assert body["pattern"] == SELECTOR_INPUT_PATTERN


def test_bodies_declare_the_address_and_password_rules(document: dict[str, Any]) -> None:
    """Registration, login and an admin's new account: an email (at most 254 characters, not
    at a special-use domain), a password of auth.min_password_length (10 here) characters
    to 72."""
    schemas = document["components"]["schemas"]
    for model in ("Credentials", "NewUser"):
        email = schemas[model]["properties"]["email"]
        assert (email["type"], email["format"], email["maxLength"]) == ("string", "email", 254)
        password = schemas[model]["properties"]["password"]
        assert (password["minLength"], password["maxLength"]) == (10, 72), model
        assert not any(k.startswith("x-kms") for k in password)
    pattern = schemas["Credentials"]["properties"]["email"]["pattern"]
    # the pattern leaves out exactly the domains email-validator refuses as special-use
    for name in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        for address in (f"bob@mail.{name}", f"bob@{name.upper()}.{name.upper()}"):
            assert re.search(pattern, address) is None, address
            with pytest.raises(InputError):
                normalize_email(address, new=True)
    for address in ("bob@example.com", "b.o+b@mail.testing.org", "bob@local.example",
                    "bob@onion.dev", "x@test.io"):
        assert re.search(pattern, address) is not None, address
        normalize_email(address, new=True)


def test_times_and_intervals_declare_what_is_read(document: dict[str, Any]) -> None:
    """since/until: epoch ms or s (core/times.py's pattern) or RFC 3339; every: bars'
    interval pattern (core/bars.py's)."""
    time_schema = [{"type": "string", "pattern": EPOCH_INPUT_PATTERN},
                   {"type": "string", "format": "date-time"}]
    ops = _operations(document)
    for key, op in ops.items():
        for param in op.get("parameters", ()):
            if param["name"] in ("since", "until"):
                assert param["schema"]["anyOf"] == time_schema, key
    (every,) = [p for p in ops[("GET", "/api/analysis/bars/{pair}")]["parameters"]
                if p["name"] == "every"]
    assert every["schema"]["pattern"] == EVERY_INPUT_PATTERN


def _media_types(document: dict[str, Any], path: str) -> set[str]:
    return set(document["paths"][path]["get"]["responses"]["200"]["content"])


def test_answers_declare_their_media_types(document: dict[str, Any]) -> None:
    assert _media_types(document, "/api/analysis/history/{pair}") == {
        "application/json", "application/x-ndjson", "text/csv",
        "application/vnd.apache.parquet"}
    assert _media_types(document, "/api/analysis/bars/{pair}") == {"application/json",
                                                                   "text/csv"}
    assert _media_types(document, "/metrics") == {"text/plain"}


async def test_each_format_answers_a_declared_media_type(gw: Stack) -> None:
    """What the routes send is what the document says they may (every format asked)."""
    r = await gw.client.get("/openapi.json")
    document = r.json()
    gw.token = await login(gw.client)
    await wait_snapshots(gw, n=2)
    asked = [("/api/analysis/history/{pair}", f) for f in ("json", "ndjson", "csv", "parquet")]
    asked += [("/api/analysis/bars/{pair}", f) for f in ("json", "csv")]
    for path, fmt in asked:
        r = await gw.client.get(path.replace("{pair}", "eth-usd"), headers=gw.auth,
                                params={"format": fmt})
        assert r.status_code == 200, (path, fmt, r.text)
        got = r.headers["content-type"].partition(";")[0]
        assert got in _media_types(document, path), (path, fmt, got)
    r = await gw.client.get("/metrics")
    assert r.headers["content-type"].partition(";")[0] in _media_types(document, "/metrics")
