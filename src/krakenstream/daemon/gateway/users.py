"""``/api/users``: register, log in (a bearer token), and who am I."""

# no "from __future__ import annotations": FastAPI reads the route signatures at runtime

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from ...core.times import iso
from ...users.base import User
from .deps import Auth, Authed
from .errors import documented
from .middleware import USER_KEY
from .responses import json_response

router = APIRouter(tags=["users"])


class Credentials(BaseModel):
    email: str
    password: str


class UserOut(BaseModel):
    id: int
    email: str
    created_at: str


class TokenOut(BaseModel):
    token: str
    token_type: str
    expires_at: str


def _user(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "created_at": iso(user.created_at)}


@router.post("/api/users/register", status_code=201, response_model=UserOut,
             responses=documented(409, 413, 422, 503))
async def register(body: Credentials, auth: Auth) -> Response:
    user = await auth.register(body.email, body.password)
    return json_response(_user(user), 201)


@router.post("/api/users/login", response_model=TokenOut,
             responses=documented(401, 413, 422, 429, 503))
async def login(body: Credentials, request: Request, auth: Auth) -> Response:
    client = request.client.host if request.client else "unknown"
    issued = await auth.login(body.email, body.password, client)
    request.scope[USER_KEY] = issued.user.id
    return json_response({"token": issued.token, "token_type": issued.token_type,
                          "expires_at": iso(issued.expires_at)})


@router.get("/api/users/me", response_model=UserOut, responses=documented(401, 503))
async def me(claims: Authed, auth: Auth) -> Response:
    return json_response(_user(await auth.me(claims)))
