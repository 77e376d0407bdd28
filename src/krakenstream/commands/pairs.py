"""``kms pairs``, ``kms track``, ``kms untrack``: which pairs the daemon follows, and how well.

``format_*`` functions build what is shown and never print.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
import typer
from rich import box
from rich.table import Table
from rich.text import Text

from .accounts import ServerOption, open_client
from .common import errors_handled, out_console

#: how each feed state is shown
STATE_STYLES = {
    "live": "bold green",
    "connecting": "cyan",
    "resyncing": "yellow",
    "stale": "yellow",
    "error": "bold red",
    "untracked": "dim",
    "reconnecting": "bold red",
}

PairArg = Annotated[str, typer.Argument(metavar="PAIR", help="Pair, e.g. SOL/USD or SOL-USD.")]


def format_state(state: object) -> Text:
    name = str(state) if state else "unknown"  # any JSON value a daemon sent, shown as text
    return Text(name, style=STATE_STYLES.get(name, "dim"))


def format_age(then: float | None, now: float) -> str:
    """``"3s ago"``, ``"2m ago"``…, or ``—`` for never (times in epoch seconds)."""
    if then is None:
        return "—"
    seconds = max(0.0, now - then)
    if seconds < 60:
        return f"{seconds:.0f}s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h ago"
    return f"{seconds / 86400:.1f}d ago"


def _num(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    return "—" if value is None else str(value)


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def format_pairs(pairs: list[dict[str, Any]], *, now: float) -> Table:
    """One row per tracked pair: feed state since when, counters, history size, last error."""
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("pair", no_wrap=True, style="bold")
    table.add_column("state", no_wrap=True)
    table.add_column("since", justify="right", no_wrap=True)
    table.add_column("frames", justify="right")
    table.add_column("mismatches", justify="right")
    table.add_column("resyncs", justify="right")
    table.add_column("reconnects", justify="right")
    table.add_column("snapshots", justify="right")
    table.add_column("last frame", justify="right", no_wrap=True)
    table.add_column("error")
    for entry in sorted(pairs, key=lambda e: str(e.get("pair", ""))):
        table.add_row(
            Text(str(entry.get("pair", "?"))),  # Text: what a daemon sent is not markup
            format_state(entry.get("state")),
            format_age(_seconds(entry.get("since")), now),
            _num(entry, "frames"),
            _num(entry, "mismatches"),
            _num(entry, "resyncs"),
            _num(entry, "reconnects"),
            _num(entry, "snapshots"),
            format_age(_seconds(entry.get("last_frame_time")), now),
            Text(str(entry.get("error") or "")),
        )
    return table


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
