"""``kms user list|add|promote|demote|disable|enable|delete``: a daemon's accounts, for admins.

Every command but ``add --local`` goes through the gateway with the stored token, which must
be an admin's (a reader's is refused with 403 and says so). An account is named by its email
or its id. ``add --local`` opens the users store of this machine's settings directly, with no
gateway or token: how the first admin of a server with closed registration is made.

The table is built by :func:`.render.format_users`.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from ..errors import InputError, NotFound
from .accounts import EmailOption, PasswordStdinOption, _email, _read_password
from .common import errors_handled, out_console, settings
from .render import format_users
from .server import ServerOption, open_client

user_app = typer.Typer(
    help="Manage the daemon's accounts: list, add, promote, demote, disable, enable, delete "
    "(an admin's login).",
    no_args_is_help=True,
)

WhoArg = Annotated[str, typer.Argument(metavar="EMAIL|ID", help="The account's email or id.")]


def find_user(users: list[dict[str, Any]], who: str) -> dict[str, Any]:
    """The account ``who`` names: an id, or an email compared as the server compares them."""
    from ..users.base import email_key  # the users package (bcrypt, jwt) only when used

    text = who.strip()
    if text.isdecimal():
        matches = [u for u in users if str(u.get("id")) == text]
    else:
        key = email_key(text)
        matches = [u for u in users if email_key(str(u.get("email", ""))) == key]
    if not matches:
        raise NotFound(f"no account {text!r} on this server", hint="kms user list")
    return matches[0]


@user_app.command("list")
def list_users(
    json_out: Annotated[bool, typer.Option("--json", help="Print the accounts as JSON.")] = False,
    server: ServerOption = None,
) -> None:
    """List every account with its role and state, oldest first."""
    with errors_handled(), open_client(server) as client:
        users = client.users()
        if json_out:
            typer.echo(orjson.dumps({"users": users}, option=orjson.OPT_INDENT_2).decode())
        else:
            out_console.print(format_users(users))


@user_app.command("add")
def add(
    email: EmailOption = None,
    admin: Annotated[bool, typer.Option("--admin", help="Make it an admin (default: reader).")]
    = False,
    local: Annotated[bool, typer.Option(
        "--local", help="Write to this machine's users store directly (no gateway, no token): "
        "for the first admin of a server with closed registration.")] = False,
    password_stdin: PasswordStdinOption = False,
    server: ServerOption = None,
) -> None:
    """Add an account (whatever the registration policy); its password is asked twice."""
    with errors_handled():
        email = _email(email, password_stdin=password_stdin, command="user add")
        password = _read_password(password_stdin, confirm=True)
        role = "admin" if admin else "reader"
        if local:
            if server is not None:
                raise InputError("--local writes to this machine's users store; it takes no "
                                 "--server")
            import asyncio

            user = asyncio.run(_add_local(email, password, role))
        else:
            with open_client(server) as client:
                user = client.add_user(email, password, role)
        out_console.print(f"added {user.get('email', email)} (id {user.get('id')}) as "
                          f"{user.get('role', role)}", markup=False)


async def _add_local(email: str, password: str, role: str) -> dict[str, Any]:
    from ..daemon.wiring import open_auth
    from ..users.base import Role

    auth = await open_auth(settings())
    try:
        user = await auth.create_user(email, password, Role(role))
    finally:
        await auth.close()
    return {"id": user.id, "email": user.email, "role": user.role.value}


def _change(who: str, server: str | None, action: str, done: str) -> None:
    with errors_handled(), open_client(server) as client:
        target = find_user(client.users(), who)
        user = client.change_user(int(target["id"]), action)
        state = "disabled" if user.get("disabled") else "enabled"
        out_console.print(f"{done} {user.get('email', who)} (id {user.get('id')}): now "
                          f"{user.get('role')}, {state}", markup=False)


@user_app.command("promote")
def promote(who: WhoArg, server: ServerOption = None) -> None:
    """Make the account an admin."""
    _change(who, server, "promote", "promoted")


@user_app.command("demote")
def demote(who: WhoArg, server: ServerOption = None) -> None:
    """Make the account a reader (not the last enabled admin)."""
    _change(who, server, "demote", "demoted")


@user_app.command("disable")
def disable(who: WhoArg, server: ServerOption = None) -> None:
    """Refuse the account's logins and end every token it holds, on every gateway."""
    _change(who, server, "disable", "disabled")


@user_app.command("enable")
def enable(who: WhoArg, server: ServerOption = None) -> None:
    """Let a disabled account log in again (its old tokens stay void)."""
    _change(who, server, "enable", "enabled")


@user_app.command("delete")
def delete(
    who: WhoArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
    server: ServerOption = None,
) -> None:
    """Remove the account; its tokens stop working."""
    with errors_handled(), open_client(server) as client:
        target = find_user(client.users(), who)
        if not yes and not typer.confirm(f"delete {target.get('email')} (id {target['id']})?"):
            raise InputError("not deleted", hint="--yes skips the question")
        client.delete_user(int(target["id"]))
        out_console.print(f"deleted {target.get('email')} (id {target['id']})", markup=False)
