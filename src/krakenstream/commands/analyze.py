"""``kms analyze``: what a pair's stored snapshots say over a window.

Coverage (snapshots found against the ticks expected, gaps the history marked), the mid's
move and realised volatility per step, spread percentiles and the mean top-of-book imbalance,
computed by the daemon from its history (``GET /api/analysis/summary/{pair}``).
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
from .history import PairArg, SinceOption, UntilOption, pair_hints, parse_when


def _v(value: Any, suffix: str = "") -> str:
    return "-" if value is None else f"{value}{suffix}"


def format_summary(s: dict[str, Any]) -> Table:
    """The summary as a two-column table (pure: builds, never prints)."""
    table = Table(title=Text(f"{s.get('pair')}: {s.get('from') or '-'} → {s.get('to') or '-'}"),
                  title_justify="left", box=box.SIMPLE_HEAD, show_header=False)
    table.add_column("what", style="dim")
    table.add_column("value", justify="right")
    coverage = s.get("coverage")
    mid, spread = s.get("mid") or {}, s.get("spread") or {}
    rows = [
        ("snapshots", f"{s.get('snapshots')} of {_v(s.get('expected'))} expected"
                      + ("" if coverage is None else f" ({coverage * 100:.2f} %)")),
        ("interval", _v(s.get("interval_ms"), " ms")),
        ("gaps marked", _v(s.get("gaps"))),
        ("mid first → last", f"{_v(mid.get('first'))} → {_v(mid.get('last'))}"),
        ("mid low / high", f"{_v(mid.get('low'))} / {_v(mid.get('high'))}"),
        ("mid change", _v(mid.get("change_bps"), " bps")),
        ("volatility per step", _v(mid.get("volatility_bps"), " bps")),
        ("spread mean", f"{_v(spread.get('mean'))} ({_v(spread.get('mean_bps'), ' bps')})"),
        ("spread median / p95 / max",
         f"{_v(spread.get('median_bps'))} / {_v(spread.get('p95_bps'))} / "
         f"{_v(spread.get('max_bps'))} bps"),
        ("imbalance mean (top 10)", _v(s.get("imbalance_mean"))),
    ]
    for what, value in rows:
        table.add_row(what, Text(value))
    return table


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
        now_ms = int(time.time() * 1000)
        since_ms = parse_when(since, now_ms=now_ms) if since is not None else None
        until_ms = (
            parse_when(until, now_ms=now_ms, option="--until") if until is not None else None
        )
        with open_client(server) as client, pair_hints():
            summary = client.summary(pair, since=since_ms, until=until_ms, limit=limit)
        if json_out:
            typer.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        else:
            out_console.print(format_summary(summary))
