"""``kms open``: the daemon's web dashboard in the user's browser.

The address is the daemon this user talks to and no other: ``--server``, else ``KMS_SERVER``,
else the local gateway (``gateway.host`` and ``gateway.port``, a wildcard host read as
127.0.0.1), so a remote address is opened only when the user configured one. The daemon is
asked first (``GET /health``): a browser is never sent to a refused connection. Where there
is no graphical browser (no display, as over SSH, where Python's ``webbrowser`` would pick a
text browser that cannot run the page) the address is printed to be opened elsewhere.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from collections.abc import Mapping
from typing import Annotated

import typer

from .common import errors_handled, out_console
from .server import ServerOption, resolve_server

#: seconds the daemon gets to answer /health
HEALTH_TIMEOUT = 5.0


def dashboard_url(server: str) -> str:
    """The page's address on a daemon: its root (``http://127.0.0.1:3000/``)."""
    return server.rstrip("/") + "/"


def can_open_browser(env: Mapping[str, str], platform: str) -> bool:
    """Whether ``webbrowser`` would reach a graphical browser: one named in ``BROWSER``, the
    system's on macOS and Windows, an X or Wayland display elsewhere."""
    if env.get("BROWSER"):
        return True
    if platform == "darwin" or platform.startswith("win"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def open_dashboard(
    server: ServerOption = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Only print the dashboard's address.")
    ] = False,
) -> None:
    """Open the daemon's web dashboard in your browser (or print its address)."""
    from ..client import KmsClient

    with errors_handled():
        url = resolve_server(server)
        with KmsClient(url, timeout=HEALTH_TIMEOUT) as client:
            client.health()  # unreachable: one line and "hint: kms daemon start"
        page = dashboard_url(url)
        out_console.print(f"dashboard: {page}", markup=False)
        if no_browser:
            return
        if not can_open_browser(os.environ, sys.platform) or not webbrowser.open(page):
            out_console.print("no browser to open here: open the address above in one",
                              markup=False)
            return
        out_console.print("opened in your browser; sign in with your kms account", markup=False)
