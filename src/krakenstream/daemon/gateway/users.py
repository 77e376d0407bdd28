"""``/api/users``: register, log in (a bearer token), log out (revoke it), and who am I.

The client address that registrations and logins are throttled by is the TCP peer, or the
client a trusted proxy names (``gateway.trusted_proxies``: the app rewrites it before any
route runs). Account management for admins is :mod:`.admin`.
"""

# no "from __future__ import annotations": FastAPI reads the route signatures at runtime

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from ...core.times import iso
from ...users.base import User, email_schema
from ...users.passwords import MAX_PASSWORD_BYTES
from .deps import Auth, Authed
from .errors import documented
from .middleware import USER_KEY
from .params import MIN_LENGTH_OF, MIN_PASSWORD_LENGTH
from .responses import json_response

router = APIRouter(tags=["users"])


#: an address in a body, as the schema declares it (the users service checks it)
Email = Annotated[str, Field(json_schema_extra=email_schema())]
#: a password in a body: its minLength is the setting (written in by params.document_maxima);
#: JSON Schema counts characters, bcrypt bytes, so the byte bound is in the description
Password = Annotated[str, Field(json_schema_extra={
    MIN_LENGTH_OF: MIN_PASSWORD_LENGTH, "maxLength": MAX_PASSWORD_BYTES,
    "description": f"at most {MAX_PASSWORD_BYTES} bytes in UTF-8 (after NFKC normalisation)",
})]


class Credentials(BaseModel):
    email: Email
    password: Password


class UserOut(BaseModel):
    id: int
    email: str
    created_at: str
    role: str
    disabled: bool


class TokenOut(BaseModel):
    token: str
    token_type: str
    expires_at: str


class Revoked(BaseModel):
    revoked: bool


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "created_at": iso(user.created_at),
            "role": user.role.value, "disabled": user.disabled}


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/api/users/register", status_code=201, response_model=UserOut,
             responses=documented(403, 409, 413, 422, 429, 503))
async def register(body: Credentials, request: Request, auth: Auth) -> Response:
    """A new account: the first of an empty store is an admin, later ones readers; 403 when
    ``auth.registration`` is closed, 429 past the per-address limit."""
    user = await auth.register(body.email, body.password, client_address(request))
    return json_response(user_json(user), 201)


@router.post("/api/users/login", response_model=TokenOut,
             responses=documented(401, 403, 413, 422, 429, 503))
async def login(body: Credentials, request: Request, auth: Auth) -> Response:
    issued = await auth.login(body.email, body.password, client_address(request))
    request.scope[USER_KEY] = issued.user.id
    return json_response({"token": issued.token, "token_type": issued.token_type,
                          "expires_at": iso(issued.expires_at)})


@router.post("/api/users/logout", response_model=Revoked, responses=documented(401, 503))
async def logout(claims: Authed, auth: Auth) -> Response:
    """Revoke this token on every gateway (at once here, within ``auth.access_ttl`` on the
    others); the account's other sessions go on."""
    await auth.logout(claims)
    return json_response({"revoked": True})


@router.get("/api/users/me", response_model=UserOut, responses=documented(401, 503))
async def me(claims: Authed, auth: Auth) -> Response:
    return json_response(user_json(await auth.me(claims)))
