"""``kms pairs``, ``kms track``, ``kms untrack``: which pairs the daemon follows, and how well.

The table is built by :func:`.render.format_pairs`.
"""

from __future__ import annotations

import time
from typing import Annotated

import orjson
import typer

from .common import errors_handled, out_console
from .render import format_pairs, format_tracked, format_untracked
from .server import ServerOption, open_client

PairArg = Annotated[str, typer.Argument(
    metavar="PAIR", help="Pair, e.g. SOL/USD or SOL-USD; or a pattern: '*/EUR', 'BTC/*', '*'.")]


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
    """Start tracking PAIR on the daemon, or every listed pair a pattern matches
    ('*/EUR', 'BTC/*', '*': quote it in the shell), now and as Kraken lists more."""
    with errors_handled(), open_client(server) as client:
        answer = client.track(pair)
        out_console.print(format_tracked(answer, pair), markup=False)


def untrack(pair: PairArg, server: ServerOption = None) -> None:
    """Stop tracking PAIR (or a pattern, and the pairs it brought) on the daemon."""
    with errors_handled(), open_client(server) as client:
        answer = client.untrack(pair)
        out_console.print(format_untracked(answer, pair), markup=False)
