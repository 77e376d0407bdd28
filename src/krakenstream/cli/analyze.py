"""``kms analyze``: what a pair's stored snapshots say over a window.

Coverage (snapshots found against the ticks expected, gaps the history marked), the mid's
move and realised volatility per step, spread percentiles and the mean top-of-book imbalance,
computed by the daemon from its history (``GET /api/analysis/summary/{pair}``).
"""

from __future__ import annotations

import time
from typing import Annotated

import orjson
import typer

from .common import errors_handled, out_console
from .history import pair_hints
from .options import PairArg, SinceOption, UntilOption, parse_window
from .render import format_summary
from .server import ServerOption, open_client


def analyze(
    pair: PairArg,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the newest N snapshots.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    server: ServerOption = None,
) -> None:
    """Summarise PAIR's stored snapshots: coverage, gaps, mid move, volatility, spreads."""
    with errors_handled():
        since_ms, until_ms = parse_window(since, until, now_ms=int(time.time() * 1000))
        with open_client(server) as client, pair_hints():
            summary = client.summary(pair, since=since_ms, until=until_ms, limit=limit)
        if json_out:
            typer.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        else:
            out_console.print(format_summary(summary))
