"""What the commands show, built and never printed: tables and text from the daemon's JSON.

Every function here is pure (data and the time in, a rich renderable out), so it is tested
at a given terminal width without a daemon, a terminal or a clock; the command modules print
what these return. Values a daemon sent are shown as text, never read as rich markup.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..core.replay import ReplayResult

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


def _txt(value: Any) -> str:
    return "—" if value is None or value == "" else str(value)


def _dec(text: Any) -> Decimal | None:
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# -- feed states and ages -----------------------------------------------------------------------


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


# -- books --------------------------------------------------------------------------------------


def ladder_rows(snapshot: dict[str, Any], depth: int) -> list[tuple[str, ...]]:
    """Rows of ``(bid cum, bid size, bid, ask, ask size, ask cum)`` to ``depth`` levels;
    cumulative sizes summed exactly; a side shorter than the other leaves blanks."""
    bids = list(snapshot.get("bids") or [])[:depth]
    asks = list(snapshot.get("asks") or [])[:depth]
    rows: list[tuple[str, ...]] = []
    bid_cum = ask_cum = Decimal(0)
    for i in range(max(len(bids), len(asks))):
        left: tuple[str, str, str] = ("", "", "")
        right: tuple[str, str, str] = ("", "", "")
        if i < len(bids):
            price, qty = bids[i][0], bids[i][1]
            bid_cum += _dec(qty) or 0
            left = (format(bid_cum, "f"), str(qty), str(price))
        if i < len(asks):
            price, qty = asks[i][0], asks[i][1]
            ask_cum += _dec(qty) or 0
            right = (str(price), str(qty), format(ask_cum, "f"))
        rows.append(left + right)
    return rows


def format_ladder(snapshot: dict[str, Any], depth: int) -> Table:
    """The book to ``depth``: bids on the left (best at the top), asks on the right."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("cum", justify="right", style="dim green")
    table.add_column("size", justify="right", style="green")
    table.add_column("bid", justify="right", style="bold green")
    table.add_column("ask", justify="right", style="bold red")
    table.add_column("size", justify="right", style="red")
    table.add_column("cum", justify="right", style="dim red")
    for row in ladder_rows(snapshot, depth):
        table.add_row(*row)
    return table


# -- kms latest, kms history --------------------------------------------------------------------


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


# -- kms pairs ----------------------------------------------------------------------------------


def _num(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    return "—" if value is None else str(value)


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


# -- kms analyze --------------------------------------------------------------------------------


def _v(value: Any, suffix: str = "") -> str:
    return "-" if value is None else f"{value}{suffix}"


def format_summary(s: dict[str, Any]) -> Table:
    """The summary as a two-column table."""
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


# -- kms replay ---------------------------------------------------------------------------------


def format_replay(file: Path, result: ReplayResult) -> Table:
    """One row per pair of a recording: frames, what verified, the book it ended with."""
    table = Table(title=f"{file.name}: {result.lines} frames", title_justify="left",
                  box=box.SIMPLE_HEAD)
    table.add_column("pair", no_wrap=True)
    for col in ("frames", "verified", "bad crc", "crossed"):
        table.add_column(col, justify="right")
    table.add_column("best bid", justify="right", no_wrap=True)
    table.add_column("best ask", justify="right", no_wrap=True)
    table.add_column("levels", justify="right", no_wrap=True)
    for pair, st in sorted(result.pairs.items()):
        mism = f"[red]{st.mismatches}[/]" if st.mismatches else "0"
        table.add_row(pair, str(st.frames), str(st.verified), mism, str(st.crossed),
                      st.best_bid or "-", st.best_ask or "-",
                      f"{st.bid_levels}/{st.ask_levels}")
    return table


# -- kms daemon status --------------------------------------------------------------------------


#: pairs listed one by one in ``kms daemon status``; beyond, a summary and the pairs not live
STATUS_PAIRS = 30
#: pairs named in the answer to ``kms track PATTERN`` before "and N more"
SHOWN_ADDED = 8


def format_tracked(answer: dict[str, Any], asked: str) -> str:
    """The one line ``kms track`` prints for a pair or a pattern."""
    name = str(answer.get("pair", asked))
    added = answer.get("added")
    if "*" not in name or not isinstance(added, list):
        return f"tracking {name} (feed {answer.get('state', 'connecting')})"
    shown = ", ".join(str(p) for p in added[:SHOWN_ADDED])
    more = f" and {len(added) - SHOWN_ADDED} more" if len(added) > SHOWN_ADDED else ""
    what = f"{len(added)} pair(s) added: {shown}{more}" if added else "no pair added now"
    return f"tracking {name}: {what}; pairs Kraken lists later are picked up as they come"


def format_untracked(answer: dict[str, Any], asked: str) -> str:
    """The one line ``kms untrack`` prints (a pattern says how many pairs it removed)."""
    name = str(answer.get("pair", asked))
    removed = answer.get("removed")
    count = f" ({len(removed)} pair(s))" if "*" in name and isinstance(removed, list) else ""
    return f"stopped tracking {name}{count}"


def format_status(pid: int | None, url: str, health: dict[str, Any] | None) -> str:
    """Whether a daemon holds this state directory, and what its gateway's /health says."""
    lines = [f"daemon: {'pid ' + str(pid) if pid else 'not running here'}; gateway {url}: "
             + ("up" if health else "not answering")]
    if health:
        lines.append(f"status: {health.get('status')}; roles: "
                     f"{', '.join(health.get('roles') or [])}")
        feed = health.get("feed") or {}
        pairs = sorted((feed.get("pairs") or {}).items())
        conns = feed.get("connections") or []
        if len(conns) > 1 or len(pairs) > STATUS_PAIRS:
            states = ", ".join(f"{n} {s}" for s, n in sorted((feed.get("states") or {}).items()))
            up = sum(1 for c in conns if c.get("connected"))
            lines.append(f"feed: {len(pairs)} pairs ({states}); {up} of {len(conns)} "
                         "connections up")
        shown = pairs if len(pairs) <= STATUS_PAIRS else [
            (p, st) for p, st in pairs if st.get("state") != "live"][:STATUS_PAIRS]
        for pair, st in shown:
            lines.append(f"  {pair:12s} {st.get('state', '?'):10s} frames={st.get('frames')} "
                         f"mismatches={st.get('mismatches')} resyncs={st.get('resyncs')}")
        for part in ("bus", "store", "users"):
            info = health.get(part)
            if isinstance(info, dict):
                ok = "ok" if info.get("healthy") else "DOWN"
                lines.append(f"{part}: {info.get('backend')} {ok}")
    return "\n".join(lines)


def format_users(users: list[dict[str, Any]]) -> Table:
    """``kms user list``: one row per account, oldest first."""
    table = Table(box=None, pad_edge=False)
    for name in ("id", "email", "role", "state", "created"):
        table.add_column(name, justify="right" if name == "id" else "left")
    for u in users:
        state = "disabled" if u.get("disabled") else "enabled"
        table.add_row(str(u.get("id", "")), str(u.get("email", "")), str(u.get("role", "")),
                      state, str(u.get("created_at", "")))
    return table
