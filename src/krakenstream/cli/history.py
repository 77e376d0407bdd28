"""``kms latest`` and ``kms history``: a pair's stored snapshots, as tables or exports.

Exports are streamed from the daemon to their destination (stdout or a file) chunk by chunk,
so a 10,000-snapshot CSV never sits in memory; a file is written beside its final name and
renamed into place once complete, so an interrupted export never leaves half a file under
the name asked for. The tables are built by :mod:`.render`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
import typer

from ..core.pairs import spell_pair
from ..errors import InputError, NotFound
from .common import err_console, errors_handled, out_console
from .options import (
    DepthOption,
    LayoutOption,
    PairArg,
    SinceOption,
    UntilOption,
    check_layout,
    parse_window,
)
from .output import count_rows, file_for, into_file, progress, to_stdout
from .render import format_history_table, format_latest
from .server import ServerOption, open_client

if TYPE_CHECKING:
    from ..client import KmsClient

#: rows shown by the table view when no ``--limit`` is given (exports have no such default)
TABLE_ROWS = 50


# -- pure helpers -----------------------------------------------------------------------------


@contextlib.contextmanager
def pair_hints() -> Iterator[None]:
    """An unknown pair hints at the commands, not at the HTTP path the gateway names."""
    try:
        yield
    except NotFound as exc:
        raise NotFound(exc.message, hint="kms pairs lists the tracked pairs") from exc


# -- commands ---------------------------------------------------------------------------------


def latest(
    pair: PairArg,
    json_out: Annotated[bool, typer.Option("--json", help="Print the snapshot as JSON.")] = False,
    server: ServerOption = None,
) -> None:
    """Show the newest stored snapshot of PAIR."""
    with errors_handled(), open_client(server) as client, pair_hints():
        snap = client.latest(pair)
        if json_out:
            typer.echo(orjson.dumps(snap, option=orjson.OPT_INDENT_2).decode())
        else:
            out_console.print(format_latest(snap))


def history(
    pair: PairArg,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help=f"At most this many snapshots (table default: "
                     f"{TABLE_ROWS}; exports: everything kept)."),
    ] = None,
    order: Annotated[
        str, typer.Option("--order", help="desc (newest first) or asc.", show_default=True)
    ] = "desc",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the daemon's JSON document.")
    ] = False,
    ndjson: Annotated[bool, typer.Option("--ndjson", help="One JSON snapshot per line.")] = False,
    csv: Annotated[
        str | None,
        typer.Option("--csv", metavar="FILE|-", help="Write CSV to FILE, or to stdout with -."),
    ] = None,
    layout: LayoutOption = "wide",
    depth: DepthOption = None,
    server: ServerOption = None,
) -> None:
    """Show or export PAIR's stored snapshots (times in ISO 8601 UTC)."""
    with errors_handled():
        if order not in ("asc", "desc"):
            raise InputError(f"--order {order!r}: expected asc or desc")
        if sum((json_out, ndjson, csv is not None)) > 1:
            raise InputError("choose one of --json, --ndjson and --csv")
        csv_layout = check_layout(layout)
        since_ms, until_ms = parse_window(since, until, now_ms=int(time.time() * 1000))
        ordering: Literal["asc", "desc"] = "asc" if order == "asc" else "desc"
        with open_client(server) as client, pair_hints():
            query: dict[str, Any] = {
                "since": since_ms, "until": until_ms, "limit": limit, "order": ordering,
            }
            if csv is not None:
                _export_csv(client, pair, csv, {**query, "layout": csv_layout, "depth": depth})
            elif json_out or ndjson:
                out = typer.get_binary_stream("stdout")
                fmt: Literal["json", "ndjson"] = "json" if json_out else "ndjson"
                for chunk in client.history_raw(pair, format=fmt, **query):
                    out.write(chunk)
                out.flush()
            else:
                _show_table(client, pair, query)


def _show_table(client: KmsClient, pair: str, query: dict[str, Any]) -> None:
    limit = query["limit"]
    shown = limit or TABLE_ROWS
    # without --limit, one row more than shown tells whether there is more to see
    rows = list(client.history(pair, **{**query, "limit": limit or TABLE_ROWS + 1}))
    more = len(rows) > shown
    rows = rows[:shown]
    title = f"{pair.upper()}: {len(rows)} snapshot{'s' if len(rows) != 1 else ''}, " + (
        "newest first" if query["order"] == "desc" else "oldest first")
    out_console.print(format_history_table(rows, title=title))
    if more:
        err_console.print("[dim]more snapshots are kept: --limit N shows more, --csv FILE "
                          "exports them all[/]")


def _expected_rows(client: KmsClient, pair: str, query: dict[str, Any]) -> int | None:
    """How many rows an export will hold, when that is known without reading it."""
    limit: int | None = query["limit"]
    if query["since"] is not None or query["until"] is not None:
        return limit
    wanted = spell_pair(pair)
    for entry in client.pairs():
        if str(entry.get("pair", "")).upper() == wanted and isinstance(
                entry.get("snapshots"), int):
            stored: int = entry["snapshots"]
            return min(stored, limit) if limit else stored
    return limit


def _export_csv(client: KmsClient, pair: str, dest: str, query: dict[str, Any]) -> None:
    chunks = client.history_raw(pair, format="csv", **query)
    if dest == "-":
        to_stdout(chunks)
        return
    path = file_for(dest, "--csv eth.csv")
    total = _expected_rows(client, pair, query)
    lines = 0
    with into_file(path) as fh, progress(total) as advance:
        for chunk in chunks:
            fh.write(chunk)
            n = count_rows(chunk)
            advance(n - 1 if lines == 0 and n else n)  # the header is not a row
            lines += n
    rows = max(0, lines - 1)
    err_console.print(f"wrote {rows} snapshot{'s' if rows != 1 else ''} to {path}",
                      markup=False)
