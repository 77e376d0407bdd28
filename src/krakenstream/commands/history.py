"""``kms latest`` and ``kms history``: a pair's stored snapshots, as tables or exports.

Exports are streamed from the daemon to their destination (stdout or a file) chunk by chunk,
so a 10,000-snapshot CSV never sits in memory; a file is written beside its final name and
renamed into place once complete, so an interrupted export never leaves half a file under
the name asked for. ``format_*`` functions build what is shown and never print.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import typer
from rich import box
from rich.console import Group, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..client import KmsClient
from ..core import times
from ..core.pairs import spell_pair
from ..errors import InputError, NotFound
from .accounts import ServerOption, open_client
from .common import err_console, errors_handled, out_console
from .stream import format_ladder

#: rows shown by the table view when no ``--limit`` is given (exports have no such default)
TABLE_ROWS = 50
#: exports at least this long get a progress bar even when their size is unknown
PROGRESS_MIN_ROWS = 1_000

PairArg = Annotated[str, typer.Argument(metavar="PAIR", help="Pair, e.g. ETH/USD or ETH-USD.")]
SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="From this time: ISO 8601, epoch ms, or a duration ago "
                 "(15m, 2h, 1d)."),
]
UntilOption = Annotated[
    str | None, typer.Option("--until", help="Up to this time (same forms as --since).")
]


# -- pure helpers -----------------------------------------------------------------------------


def parse_when(text: str, *, now_ms: int, option: str = "--since") -> int:
    """A time option as epoch ms: ISO 8601 (UTC unless an offset is given), epoch ms, or a
    duration before now such as ``90s``, ``15m``, ``2h``, ``1d``
    (:func:`krakenstream.core.times.parse_time`), refused in words that name ``option``."""
    hint = f"e.g. {option} 2026-11-25T17:00:00Z, {option} 1764090000000, {option} 1h"
    try:
        return times.parse_time(text, now_ms=now_ms)
    except times.TimeOutOfRange:
        raise InputError(f"{option} {text!r}: more than 300,000 years from 1970",
                         hint=hint) from None
    except times.BadTime:
        raise InputError(
            f"{option} {text!r}: expected an ISO 8601 time, epoch milliseconds or a "
            "duration such as 15m", hint=hint,
        ) from None


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _txt(value: Any) -> str:
    return "—" if value is None or value == "" else str(value)


def format_history_table(snapshots: Iterable[dict[str, Any]], *, title: str) -> Table:
    """One row per snapshot: time, sequence and the metrics at the touch."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("seq", justify="right")
    table.add_column("best bid", justify="right", style="green")
    table.add_column("best ask", justify="right", style="red")
    table.add_column("spread", justify="right")
    table.add_column("bps", justify="right")
    table.add_column("mid", justify="right")
    table.add_column("imbalance", justify="right")
    table.add_column("gap", justify="center")
    for s in snapshots:
        table.add_row(
            _txt(s.get("time")),
            _txt(s.get("seq")),
            _txt(s.get("best_bid")),
            _txt(s.get("best_ask")),
            _txt(s.get("spread")),
            _txt(s.get("spread_bps")),
            _txt(s.get("mid")),
            _txt(s.get("imbalance")),
            "yes" if s.get("gap_before") else "",
        )
    return table


def format_latest(snapshot: dict[str, Any], *, depth: int = 5) -> RenderableType:
    """The newest snapshot: its metrics, then the top of its book."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    spread = _txt(snapshot.get("spread"))
    bps = snapshot.get("spread_bps")
    rows = [
        ("pair", _txt(snapshot.get("pair"))),
        ("time", _txt(snapshot.get("time"))),
        ("exchange time", _txt(snapshot.get("exchange_ts"))),
        ("seq", _txt(snapshot.get("seq"))),
        ("best bid / ask", f"{_txt(snapshot.get('best_bid'))} / {_txt(snapshot.get('best_ask'))}"),
        ("spread", f"{spread} ({_txt(bps)} bps)" if bps is not None else spread),
        ("mid", _txt(snapshot.get("mid"))),
        ("microprice", _txt(snapshot.get("microprice"))),
        ("imbalance", _txt(snapshot.get("imbalance"))),
        ("checksum", _txt(snapshot.get("checksum"))),
    ]
    for key, value in rows:
        facts.add_row(key, value)
    return Group(facts, format_ladder(snapshot, depth))


def count_rows(chunk: bytes) -> int:
    """Lines in a chunk of CSV or NDJSON (no field of ours holds a line break)."""
    return chunk.count(b"\n")


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
    server: ServerOption = None,
) -> None:
    """Show or export PAIR's stored snapshots (times in ISO 8601 UTC)."""
    with errors_handled():
        if order not in ("asc", "desc"):
            raise InputError(f"--order {order!r}: expected asc or desc")
        if sum((json_out, ndjson, csv is not None)) > 1:
            raise InputError("choose one of --json, --ndjson and --csv")
        now_ms = int(time.time() * 1000)
        since_ms = parse_when(since, now_ms=now_ms) if since is not None else None
        until_ms = (
            parse_when(until, now_ms=now_ms, option="--until") if until is not None else None
        )
        ordering: Literal["asc", "desc"] = "asc" if order == "asc" else "desc"
        with open_client(server) as client, pair_hints():
            query: dict[str, Any] = {
                "since": since_ms, "until": until_ms, "limit": limit, "order": ordering,
            }
            if csv is not None:
                _export_csv(client, pair, csv, query)
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
        out = typer.get_binary_stream("stdout")
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        return
    path = Path(dest).expanduser()
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name", hint="e.g. --csv eth.csv")
    total = _expected_rows(client, pair, query)
    part = path.with_name(f".{path.name}.part")
    lines = 0
    try:
        with part.open("wb") as fh, _progress(total) as advance:
            for chunk in chunks:
                fh.write(chunk)
                n = count_rows(chunk)
                advance(n - 1 if lines == 0 and n else n)  # the header is not a row
                lines += n
        os.replace(part, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    rows = max(0, lines - 1)
    err_console.print(f"wrote {rows} snapshot{'s' if rows != 1 else ''} to {path}",
                      markup=False)


@contextlib.contextmanager
def _progress(total: int | None) -> Iterator[Any]:
    """A progress bar on stderr for long exports; a no-op for short or unknown ones."""
    if total is not None and total < PROGRESS_MIN_ROWS:
        yield lambda n: None
        return
    columns = [SpinnerColumn(), TextColumn("exporting"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("export", total=total)
        yield lambda n: progress.advance(task, n)
