"""``kms register``, ``kms login``, ``kms logout``, ``kms whoami``: accounts on a daemon.

``kms logout`` revokes the token on the daemon (``POST /api/users/logout``: every gateway of
that server refuses it from then on) before forgetting it here. A daemon that cannot be reached
does not keep you logged in: the token is forgotten anyway and a warning says it stays valid
on the server until it expires. The account management commands are ``kms user`` (users.py).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from ..errors import AuthError, BackendUnavailable, InputError, Throttled
from .common import err_console, errors_handled, out_console
from .credentials import Credential
from .server import ServerOption, credentials, require_credential, resolve_server

EmailOption = Annotated[
    str | None, typer.Option("--email", help="Account email (prompted for if not given).")
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]


def _read_password(from_stdin: bool, *, confirm: bool) -> str:
    if from_stdin:
        line = typer.get_text_stream("stdin").readline()
        text = line.rstrip("\r\n")
        if not text:
            raise InputError("no password on stdin", hint="echo \"$PASSWORD\" | kms login "
                             "--email EMAIL --password-stdin")
        return text
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return password


def _email(email: str | None, *, password_stdin: bool, command: str) -> str:
    if email is None and password_stdin:
        # a prompt would read stdin, which holds the password: it would become the email
        raise InputError(
            "--password-stdin needs --email: stdin holds the password",
            hint=f"printf '%s\\n' \"$PASSWORD\" | kms {command} --email EMAIL "
            "--password-stdin",
        )
    if email is None:
        email = typer.prompt("Email")
    email = email.strip()
    if not email:
        raise InputError("an email is needed")
    return email


def register(
    email: EmailOption = None,
    password_stdin: PasswordStdinOption = False,
    server: ServerOption = None,
) -> None:
    """Create an account on the daemon (the password is asked twice, hidden)."""
    from ..client import KmsClient

    with errors_handled():
        url = resolve_server(server)
        email = _email(email, password_stdin=password_stdin, command="register")
        password = _read_password(password_stdin, confirm=True)
        with KmsClient(url) as client:
            user = client.register(email, password)
        out_console.print(f"registered {user.get('email', email)} on {url}", markup=False)
        out_console.print(f"[dim]next:[/] kms login --email {escape(user.get('email', email))}")


def login(
    email: EmailOption = None,
    password_stdin: PasswordStdinOption = False,
    server: ServerOption = None,
) -> None:
    """Log in and keep the token in the credentials file (mode 0600), filed by server."""
    from ..client import KmsClient

    with errors_handled():
        url = resolve_server(server)
        email = _email(email, password_stdin=password_stdin, command="login")
        password = _read_password(password_stdin, confirm=False)
        with KmsClient(url) as client:
            try:
                answer = client.login(email, password)
            except Throttled:
                raise
            except AuthError as exc:  # "hint: kms login" would be no help here
                raise AuthError(exc.message, hint="check the email and password; kms register "
                                "creates an account") from exc
        expires = answer.get("expires_at")
        credentials().save(
            url,
            Credential(email=email, token=answer["token"],
                       expires_at=expires if isinstance(expires, str) else None),
        )
        until = f" until {expires}" if expires else ""
        out_console.print(f"logged in to {url} as {email}{until}", markup=False)


def logout(server: ServerOption = None) -> None:
    """Revoke the token on the daemon (every gateway refuses it from then on) and forget it."""
    from ..client import KmsClient

    with errors_handled():
        url = resolve_server(server)
        store = credentials()
        cred = store.get(url)
        if cred is None:
            out_console.print(f"not logged in to {url}", markup=False)
            return
        warning = None
        try:
            with KmsClient(url, cred.token) as client:
                client.logout()
        except AuthError:
            pass  # expired, revoked or its account disabled: it opens nothing already
        except BackendUnavailable as exc:
            until = f" (until {cred.expires_at})" if cred.expires_at else ""
            warning = (f"{exc.message}: the token was not revoked there and stays valid on "
                       f"that server until it expires{until}")
        store.remove(url)
        out_console.print(f"logged out of {url}", markup=False)
        if warning:
            err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)


def whoami(server: ServerOption = None) -> None:
    """Show who the stored token belongs to, as the daemon sees it."""
    from ..client import KmsClient

    with errors_handled():
        url = resolve_server(server)
        cred = require_credential(url)
        with KmsClient(url, cred.token) as client:
            user = client.me()
        until = f" (session until {cred.expires_at})" if cred.expires_at else ""
        role = f", {user['role']}" if isinstance(user.get("role"), str) else ""
        out_console.print(f"{user.get('email', cred.email)} on {url}{until}{role}",
                          markup=False)
