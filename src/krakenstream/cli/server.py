"""Which daemon a client command talks to, and the client for it.

The command's ``--server``, else ``kms --server`` before the command, else ``KMS_SERVER``,
else the local daemon's address from the settings. The client carries the token kept for
that server in the credentials file when the call needs one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ..config import server_url
from ..errors import AuthError, BackendUnavailable, KmsError
from .common import global_server, settings
from .credentials import Credential, CredentialsFile, server_key

if TYPE_CHECKING:
    from ..client import KmsClient

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        metavar="URL",
        help="Daemon's gateway URL (default: KMS_SERVER, else the local daemon).",
        show_default=False,
    ),
]


def resolve_server(server: str | None) -> str:
    """The command's ``--server``, else the global one, else ``KMS_SERVER``, else the local
    daemon's gateway address."""
    from ..client import check_base_url  # the client (httpx, websockets) only when used

    chosen = server if server is not None else global_server()
    return server_key(check_base_url(chosen if chosen is not None else server_url(settings())))


def credentials() -> CredentialsFile:
    return CredentialsFile.from_settings(settings())


def require_credential(url: str) -> Credential:
    """The token kept for ``url``; without one (or with an expired one), AuthError, hint
    ``kms login`` — unless no daemon answers there at all: then that is the error, since
    logging in would fail too (a newcomer's first command, before any daemon runs)."""
    try:
        return credentials().require(url)
    except AuthError:
        import httpx

        from ..client import KmsClient

        with KmsClient(url) as probe:
            try:
                probe.health()
            except BackendUnavailable as exc:
                if isinstance(exc.__cause__, httpx.ConnectError):  # nothing listens there
                    raise
            except KmsError:
                pass  # something answers: logging in is what is missing
        raise


def open_client(server: str | None, *, auth: bool = True) -> KmsClient:
    """A client for the chosen daemon; with ``auth``, carrying the stored token (see
    :func:`require_credential`)."""
    from ..client import KmsClient

    url = resolve_server(server)
    token = require_credential(url).token if auth else None
    return KmsClient(url, token)
