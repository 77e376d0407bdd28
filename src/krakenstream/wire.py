"""What the gateway and its clients agree on: WebSocket close codes and the error table.

Both ends import this module (the gateway to answer, :mod:`krakenstream.client` to read the
answer), so the two can never drift apart. No web framework or HTTP client here: only the
numbers, the codes and the exception classes they stand for.

An error answer is ``{"error": message, "code": code, "hint": hint}`` with the status that
:data:`ERROR_TABLE` (our exceptions) or :data:`STATUS_CODES` (statuses the framework answers
itself) gives; a client turns a status back into an exception with :func:`error_class`. The
hint is the error's own, or else its code's from :data:`HINTS` (written for someone calling
the API); a client that meets a code's own hint knows it for one and may give its own
instead (:func:`own_hint`: the CLI says ``kms login`` where the API says where to log in).
"""

from __future__ import annotations

from .errors import (
    AuthError,
    BackendUnavailable,
    Conflict,
    FeedError,
    Forbidden,
    InputError,
    KmsError,
    NotFound,
    Throttled,
)

# -- WebSocket close codes (RFC 6455's, and the gateway's private ones) ---------------------

#: the server is shutting down: come back later
GOING_AWAY = 1001
#: the client fell more than ``gateway.ws_backlog`` messages behind and was cut off
TOO_SLOW = 1013
#: the token was missing, expired, forged or revoked: coming back with it will not help
BAD_TOKEN = 4401
#: the token was revoked (logged out) or its account disabled or deleted while the stream
#: was open: log in again (or ask an admin)
TOKEN_REVOKED = 4403
#: the pair is malformed: coming back with it will not help
BAD_PAIR = 4404
#: the gateway serves its most streams (``gateway.max_ws_clients``), or this account has its
#: most open (``gateway.max_ws_per_user``): refused at once; come back when one has closed
TOO_MANY_STREAMS = 4429

#: the WebSocket subprotocol that carries a bearer token where no header can (a browser):
#: the client offers ``kms.bearer`` then the token itself; the server accepts with
#: ``kms.bearer`` alone, so the token is never echoed and never in the URL
BEARER_SUBPROTOCOL = "kms.bearer"

# -- HTTP statuses and error codes ------------------------------------------------------------

#: KmsError subclass → (status, code), most specific first: the first match wins, so
#: Throttled (an AuthError) must come before AuthError.
ERROR_TABLE: tuple[tuple[type[KmsError], int, str], ...] = (
    (Throttled, 429, "throttled"),
    (Forbidden, 403, "forbidden"),
    (AuthError, 401, "unauthorized"),
    (InputError, 422, "invalid"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (BackendUnavailable, 503, "unavailable"),
    (FeedError, 503, "unavailable"),
)

#: HTTP statuses the web framework answers itself (routing, body limit) → code; any other
#: such status is answered with the code ``invalid``
STATUS_CODES: dict[int, str] = {
    401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "invalid", 413: "too_large",
    422: "invalid",
    429: "throttled", 503: "unavailable",
}

#: error status → the exception a client raises for it: the first row of
#: :data:`ERROR_TABLE` with that status, and the status only the framework sends (413, a
#: body over the limit). 403 is :class:`Forbidden` (an AuthError): a role that may not, or a
#: WebSocket refused before its handshake
STATUS_ERRORS: dict[int, type[KmsError]] = {
    **{status: cls for cls, status, _ in reversed(ERROR_TABLE)},
    413: InputError,
}


#: error code → the hint an answer carries when its error has none of its own
HINTS: dict[str, str] = {
    "invalid": "GET /docs describes every route and its parameters",
    "unauthorized": "log in (POST /api/users/login) and send Authorization: Bearer <token>",
    "forbidden": "an admin of this server can do this (GET /api/users/me shows your role)",
    "not_found": "GET /api/pairs lists the tracked pairs; GET /docs describes every route",
    "conflict": "it exists already: nothing to do",
    "too_large": "send a smaller body (the gateway takes up to gateway.max_body_bytes)",
    "throttled": "wait as long as Retry-After says, then try again",
    "unavailable": "GET /health shows which part of the daemon is down",
    "internal": "a bug: the daemon's log has its cause",
}


def hint_for(code: str, hint: str | None) -> str:
    """The hint an error answer carries: the error's own, else its code's."""
    return hint or HINTS.get(code, HINTS["invalid"])


def own_hint(code: object, hint: str | None) -> str | None:
    """An answer's hint if it is the error's own, None if it is only its code's default."""
    if hint is None or (isinstance(code, str) and HINTS.get(code) == hint):
        return None
    return hint


def classify(exc: KmsError) -> tuple[int, str]:
    """The status and code of one of our errors (500 ``internal`` for one not in the table)."""
    for cls, status, code in ERROR_TABLE:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal"


def error_class(status: int) -> type[KmsError] | None:
    """The exception an error answer with ``status`` stands for, if the table names one."""
    return STATUS_ERRORS.get(status)
