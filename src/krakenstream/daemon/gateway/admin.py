"""``/api/users`` for admins: list the accounts, add one, promote, demote, disable, enable,
delete. Every route takes an admin's token (403 ``forbidden`` for a reader).

A change applies at once on this gateway (its access cache forgets the account) and within
``auth.access_ttl`` on the others; disabling or deleting an account ends every token it
holds, its live streams included. The last enabled admin cannot be demoted, disabled or
deleted (409). Accounts an admin adds are made whatever ``auth.registration`` says.
"""

# no "from __future__ import annotations": FastAPI reads the route signatures at runtime

from typing import Annotated, Literal

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel
from starlette.responses import Response

from ...users.base import Role
from .deps import Admin, Auth
from .errors import documented
from .responses import json_response
from .users import Email, Password, UserOut, user_json

router = APIRouter(tags=["admin"])

UserId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="an account's id")]


class NewUser(BaseModel):
    email: Email
    password: Password
    role: Literal["reader", "admin"] = "reader"


class UserList(BaseModel):
    users: list[UserOut]


class Deleted(BaseModel):
    id: int
    deleted: bool


@router.get("/api/users", response_model=UserList, responses=documented(401, 403, 503))
async def list_users(caller: Admin, auth: Auth) -> Response:
    """Every account, oldest first, with its role and whether it is disabled."""
    return json_response({"users": [user_json(u) for u in await auth.list_users()]})


@router.post("/api/users", status_code=201, response_model=UserOut,
             responses=documented(401, 403, 409, 413, 422, 503))
async def add_user(body: NewUser, caller: Admin, auth: Auth) -> Response:
    """Add an account (a reader unless ``role`` says admin), whatever the registration
    policy."""
    user = await auth.create_user(body.email, body.password, Role(body.role))
    return json_response(user_json(user), 201)


@router.post("/api/users/{user_id}/promote", response_model=UserOut,
             responses=documented(401, 403, 404, 422, 503))
async def promote(user_id: UserId, caller: Admin, auth: Auth) -> Response:
    """Make the account an admin."""
    return json_response(user_json(await auth.set_role(user_id, Role.ADMIN)))


@router.post("/api/users/{user_id}/demote", response_model=UserOut,
             responses=documented(401, 403, 404, 409, 422, 503))
async def demote(user_id: UserId, caller: Admin, auth: Auth) -> Response:
    """Make the account a reader (409 for the last enabled admin)."""
    return json_response(user_json(await auth.set_role(user_id, Role.READER)))


@router.post("/api/users/{user_id}/disable", response_model=UserOut,
             responses=documented(401, 403, 404, 409, 422, 503))
async def disable(user_id: UserId, caller: Admin, auth: Auth) -> Response:
    """Refuse the account's logins and end every token it holds (409 for the last enabled
    admin)."""
    return json_response(user_json(await auth.set_disabled(user_id, True)))


@router.post("/api/users/{user_id}/enable", response_model=UserOut,
             responses=documented(401, 403, 404, 422, 503))
async def enable(user_id: UserId, caller: Admin, auth: Auth) -> Response:
    """Let the account log in again (its tokens from before it was disabled stay void)."""
    return json_response(user_json(await auth.set_disabled(user_id, False)))


@router.delete("/api/users/{user_id}", response_model=Deleted,
               responses=documented(401, 403, 404, 409, 422, 503))
async def delete(user_id: UserId, caller: Admin, auth: Auth) -> Response:
    """Remove the account; its tokens stop working (409 for the last enabled admin)."""
    await auth.delete_user(user_id)
    return json_response({"id": user_id, "deleted": True})
