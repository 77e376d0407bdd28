"""``kms``: the command line. Thin: parses, calls the library or the client, renders with rich.

Each command group lives in its own module under ``krakenstream.commands`` and is registered
here; expected failures (any :class:`~krakenstream.errors.KmsError`) print one line and a hint,
never a traceback (``--verbose`` shows it).
"""

from __future__ import annotations

import sys

import typer

from .commands import (
    accounts,
    analyze,
    common,
    demo,
    history,
    pairs,
    record,
    replay,
    sim,
    stream,
)
from .commands.daemon import daemon_app

app = typer.Typer(
    name="kms",
    help="krakenstream: exact, checksum-verified Kraken order books.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.callback()(common.root_options)
app.command("replay")(replay.replay)
app.add_typer(daemon_app, name="daemon")
app.command("record")(record.record)
app.command("sim")(sim.sim)
app.command("register")(accounts.register)
app.command("login")(accounts.login)
app.command("logout")(accounts.logout)
app.command("whoami")(accounts.whoami)
app.command("latest")(history.latest)
app.command("history")(history.history)
app.command("analyze")(analyze.analyze)
app.command("pairs")(pairs.pairs)
app.command("track")(pairs.track)
app.command("untrack")(pairs.untrack)
app.command("stream")(stream.stream)
app.command("demo")(demo.demo)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
