"""What both ends of the wire agree on (wire.py): close codes and the error table, read the
same way by the gateway (answering) and the client (raising)."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

from krakenstream import client, wire
from krakenstream.daemon import gateway
from krakenstream.errors import (
    AuthError,
    BackendUnavailable,
    Conflict,
    FeedError,
    Forbidden,
    InputError,
    InvalidPair,
    KmsError,
    NotFound,
    Overloaded,
    PasswordPolicyError,
    Throttled,
)
from krakenstream.wire import (
    ERROR_TABLE,
    HINTS,
    STATUS_CODES,
    classify,
    error_class,
    hint_for,
    own_hint,
)


def test_error_table() -> None:
    assert classify(Throttled("x", retry_after=3)) == (429, "throttled")
    assert classify(AuthError("x")) == (401, "unauthorized")
    assert classify(Forbidden("x")) == (403, "forbidden")
    assert classify(Overloaded("x", retry_after=2)) == (503, "unavailable")
    assert classify(InvalidPair("x")) == (422, "invalid")
    assert classify(PasswordPolicyError("x")) == (422, "invalid")
    assert classify(NotFound("x")) == (404, "not_found")
    assert classify(Conflict("x")) == (409, "conflict")
    assert classify(BackendUnavailable("x")) == (503, "unavailable")
    assert classify(KmsError("x")) == (500, "internal")
    # a subclass never comes after its base, or the base would shadow it
    for i, (cls, _, _) in enumerate(ERROR_TABLE):
        for base, _, _ in ERROR_TABLE[:i]:
            assert not issubclass(cls, base), (cls, base)



def test_the_close_codes() -> None:
    assert (wire.GOING_AWAY, wire.TOO_SLOW, wire.BAD_TOKEN, wire.BAD_PAIR) == (
        1001, 1013, 4401, 4404)
    assert wire.TOKEN_REVOKED == 4403


def test_the_client_reads_the_statuses_the_gateway_writes() -> None:
    assert {s: error_class(s) for s in (401, 403, 404, 409, 413, 422, 429, 503)} == {
        401: AuthError, 403: Forbidden, 404: NotFound, 409: Conflict, 413: InputError,
        422: InputError, 429: Throttled, 503: BackendUnavailable,
    }
    assert error_class(500) is None and error_class(418) is None
    # every error the gateway answers with comes back as the class it was, or (503, which
    # two rows share) as the first row's
    for _, status, code in ERROR_TABLE:
        back = error_class(status)
        assert back is not None
        raised = Throttled("x", retry_after=1) if back is Throttled else back("x")
        assert classify(raised) == (status, code)
    assert classify(FeedError("x")) == classify(BackendUnavailable("x"))
    # the framework's own statuses have a code, and the client a class for each error one
    for status in STATUS_CODES:
        assert error_class(status) is not None or status == 405


@pytest.mark.parametrize("status", [401, 403, 404, 409, 413, 422, 503])
def test_error_from_response_uses_the_table(status: int) -> None:
    err = client.error_from_response(status, {}, b'{"error": "the words"}', "GET /x")
    assert type(err) is error_class(status) and err.message == "the words"


def _gateway_modules() -> list[ModuleType]:
    names = [m.name for m in pkgutil.iter_modules(gateway.__path__)]
    assert "errors" in names and "hub" in names  # the test sees what it should
    return [importlib.import_module(f"{gateway.__name__}.{name}") for name in names]


def test_no_side_keeps_a_copy() -> None:
    for module in (client, *_gateway_modules()):
        names = vars(module)
        for name in ("ERROR_TABLE", "_STATUS_CODES", "_STATUS_ERRORS", "WS_BAD_TOKEN",
                     "WS_BAD_PAIR", "WS_TOO_SLOW", "WS_GOING_AWAY"):
            assert name not in names, (module.__name__, name)


def test_every_code_has_a_hint_and_a_client_knows_it_for_a_default() -> None:
    codes = {code for _, _, code in ERROR_TABLE} | set(STATUS_CODES.values()) | {"internal"}
    assert codes <= set(HINTS)
    for code, hint in HINTS.items():
        assert hint_for(code, None) == hint and own_hint(code, hint) is None
        assert hint_for(code, "mine") == "mine" and own_hint(code, "mine") == "mine"
    assert own_hint(None, HINTS["invalid"]) == HINTS["invalid"]  # no code: not known
