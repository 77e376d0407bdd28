"""``kms bars``: a pair's snapshots summed up per interval, as a table, JSON or CSV.

The daemon computes the bars (``GET /api/analysis/bars/{pair}``) from its window store and
its Parquet archive alike; this only asks and shows (:func:`.render.format_bars`).
"""

from __future__ import annotations

import time
from typing import Annotated

import orjson
import typer

from ..errors import InputError
from .common import err_console, errors_handled, out_console
from .history import pair_hints
from .options import PairArg, SinceOption, UntilOption, parse_window
from .output import count_rows, file_for, into_file, to_stdout
from .render import format_bars
from .server import ServerOption, open_client


def bars(
    pair: PairArg,
    every: Annotated[
        str, typer.Option("--every", help="The interval: 1m, 5m, 1h (a count and s, m, h or "
                          "d; at most 7d).", show_default=True)] = "1m",
    since: SinceOption = None,
    until: UntilOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the daemon's JSON.")] = False,
    csv: Annotated[
        str | None,
        typer.Option("--csv", metavar="FILE|-", help="Write CSV to FILE, or to stdout with -."),
    ] = None,
    server: ServerOption = None,
) -> None:
    """Bars of PAIR per interval: mid open/high/low/close, spread, microprice, imbalance,
    snapshot count and gaps; from the window store, or the archive too with --since."""
    with errors_handled():
        if json_out and csv is not None:
            raise InputError("choose one of --json and --csv")
        since_ms, until_ms = parse_window(since, until, now_ms=int(time.time() * 1000))
        with open_client(server) as client, pair_hints():
            if csv is not None:
                chunks = client.bars_csv(pair, every=every, since=since_ms, until=until_ms)
                if csv == "-":
                    to_stdout(chunks)
                    return
                path = file_for(csv, "--csv eth-1m.csv")
                lines = 0
                with into_file(path) as fh:
                    for chunk in chunks:
                        fh.write(chunk)
                        lines += count_rows(chunk)
                n = max(0, lines - 1)
                err_console.print(f"wrote {n} bar{'s' if n != 1 else ''} to {path}",
                                  markup=False)
                return
            answer = client.bars(pair, every=every, since=since_ms, until=until_ms)
        if json_out:
            typer.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        else:
            out_console.print(format_bars(answer))
