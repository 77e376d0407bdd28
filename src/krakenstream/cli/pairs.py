"""``kms pairs``, ``kms track``, ``kms untrack``: which pairs the daemon follows, and how well.

The table is built by :func:`.render.format_pairs`.
"""

from __future__ import annotations

import time
from typing import Annotated

import orjson
import typer

from .common import errors_handled, out_console
from .render import format_pairs
from .server import ServerOption, open_client

PairArg = Annotated[str, typer.Argument(metavar="PAIR", help="Pair, e.g. SOL/USD or SOL-USD.")]


def pairs(
    json_out: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
    server: ServerOption = None,
) -> None:
    """List the pairs the daemon tracks, with their feed state and counters."""
    with errors_handled(), open_client(server) as client:
        entries = client.pairs()
        if json_out:
            typer.echo(orjson.dumps({"pairs": entries}, option=orjson.OPT_INDENT_2).decode())
        elif not entries:
            out_console.print("no pairs tracked; start one with: kms track ETH/USD")
        else:
            out_console.print(format_pairs(entries, now=time.time()))


def track(pair: PairArg, server: ServerOption = None) -> None:
    """Start tracking PAIR on the daemon."""
    with errors_handled(), open_client(server) as client:
        answer = client.track(pair)
        out_console.print(
            f"tracking {answer.get('pair', pair)} (feed {answer.get('state', 'connecting')})",
            markup=False,
        )


def untrack(pair: PairArg, server: ServerOption = None) -> None:
    """Stop tracking PAIR on the daemon."""
    with errors_handled(), open_client(server) as client:
        answer = client.untrack(pair)
        out_console.print(f"stopped tracking {answer.get('pair', pair)}", markup=False)
