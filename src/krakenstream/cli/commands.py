"""The ``kms`` command tree: the global options and every command, each under a help panel.

``kms --help`` shows the panels in the order of :data:`PANELS`, and the commands of a panel
in the order they are registered: the everyday ones first. To add a command, write it as a
function in a module of its own in this package and register it here in one line, under the
panel where a newcomer would look for it (``tests/test_cli_commands.py`` holds every command
to having one). Importing the module must stay cheap: what only its body needs is imported
there (see the package's docstring).
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from . import (
    accounts,
    analyze,
    bars,
    common,
    demo,
    export,
    history,
    pairs,
    record,
    replay,
    sim,
    stream,
    users,
)
from .daemon import daemon_app
from .open import open_dashboard

#: the help panels, in the order ``kms --help`` shows them
DATA = "Data"
ACCOUNTS = "Accounts"
DAEMON = "Daemon"
TOOLS = "Tools"
PANELS = (DATA, ACCOUNTS, DAEMON, TOOLS)


class _ByPanel(TyperGroup):
    """Lists commands panel by panel (typer would list command groups after commands)."""

    def list_commands(self, ctx: Any) -> list[str]:  # typer's own (vendored) click Context
        def panel(name: str) -> int:
            found = getattr(self.commands[name], "rich_help_panel", None)
            return PANELS.index(found) if found in PANELS else len(PANELS)

        return sorted(super().list_commands(ctx), key=panel)  # stable: registration order


app = typer.Typer(
    name="kms",
    cls=_ByPanel,
    help="krakenstream: exact, checksum-verified Kraken order books.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.callback()(common.root_options)

# what the daemon holds: live books, history, analysis, the tracked pairs
app.command("stream", rich_help_panel=DATA)(stream.stream)
app.command("latest", rich_help_panel=DATA)(history.latest)
app.command("history", rich_help_panel=DATA)(history.history)
app.command("export", rich_help_panel=DATA)(export.export)
app.command("analyze", rich_help_panel=DATA)(analyze.analyze)
app.command("bars", rich_help_panel=DATA)(bars.bars)
app.command("pairs", rich_help_panel=DATA)(pairs.pairs)
app.command("track", rich_help_panel=DATA)(pairs.track)
app.command("untrack", rich_help_panel=DATA)(pairs.untrack)
app.command("open", rich_help_panel=DATA)(open_dashboard)

# an account on the daemon, and the token kept for it
app.command("login", rich_help_panel=ACCOUNTS)(accounts.login)
app.command("logout", rich_help_panel=ACCOUNTS)(accounts.logout)
app.command("whoami", rich_help_panel=ACCOUNTS)(accounts.whoami)
app.command("register", rich_help_panel=ACCOUNTS)(accounts.register)
app.add_typer(users.user_app, name="user", rich_help_panel=ACCOUNTS)

# the daemon itself
app.add_typer(daemon_app, name="daemon", rich_help_panel=DAEMON)

# offline: the whole system in one command, the simulator, recordings
app.command("demo", rich_help_panel=TOOLS)(demo.demo)
app.command("replay", rich_help_panel=TOOLS)(replay.replay)
app.command("record", rich_help_panel=TOOLS)(record.record)
app.command("sim", rich_help_panel=TOOLS)(sim.sim)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
