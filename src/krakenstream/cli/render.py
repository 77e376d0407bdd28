"""What the commands show, built and never printed: tables and text from the daemon's JSON.

Every function here is pure (data and the time in, a rich renderable out), so it is tested
at a given terminal width without a daemon, a terminal or a clock; the command modules print
what these return. Values a daemon sent are shown as text, never read as rich markup, and a
number is never cut short: the tables are :class:`~.tables.FitTable`, which drop the least
needed columns, or turn to one block per row, before a value would lose a digit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .tables import Cell, Column, FitTable

if TYPE_CHECKING:
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


#: the ladder's columns: the prices stay, the sizes go after the cumulative sizes
LADDER_COLUMNS = (
    Column("cum", style="dim green", priority=2),
    Column("size", style="green", priority=1),
    Column("bid", style="bold green"),
    Column("ask", style="bold red"),
    Column("size", style="red", priority=1),
    Column("cum", style="dim red", priority=2),
)


def format_ladder(snapshot: dict[str, Any], depth: int) -> FitTable:
    """The book to ``depth``: bids on the left (best at the top), asks on the right."""
    return FitTable(LADDER_COLUMNS, ladder_rows(snapshot, depth),
                    dropped_note="{names}: not shown at this width")


# -- kms latest, kms history --------------------------------------------------------------------


#: ``kms history``'s columns; the time and the touch stay whatever the width
HISTORY_COLUMNS = (
    Column("time (UTC)", justify="left", short="time"),
    Column("seq", priority=4),
    Column("best bid", style="green", short="bid"),
    Column("best ask", style="red", short="ask"),
    Column("spread", priority=3),
    Column("bps", priority=5),
    Column("mid", priority=2),
    Column("imbalance", priority=6, short="imb."),
    Column("gap", justify="center", priority=1),
)


def format_history_table(snapshots: Iterable[dict[str, Any]], *, title: str) -> FitTable:
    """One row per snapshot: time, sequence and the metrics at the touch."""
    rows = [
        [_txt(s.get(key)) for key in ("time", "seq", "best_bid", "best_ask", "spread",
                                       "spread_bps", "mid", "imbalance")]
        + ["yes" if s.get("gap_before") else ""]
        for s in snapshots
    ]
    return FitTable(HISTORY_COLUMNS, rows, title=title)


def format_latest(snapshot: dict[str, Any], *, depth: int = 5) -> RenderableType:
    """The newest snapshot: its metrics, then the top of its book."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim", no_wrap=True)
    facts.add_column(overflow="fold")
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


#: ``kms pairs``' columns; the pair, its state and its error stay whatever the width
PAIRS_COLUMNS = (
    Column("pair", justify="left", style="bold"),
    Column("state", justify="left"),
    Column("since", priority=5),
    Column("frames", priority=1),
    Column("mismatches", priority=3, short="mism."),
    Column("resyncs", priority=4, short="resync"),
    Column("reconnects", priority=6, short="reconn."),
    Column("snapshots", priority=2, short="snaps"),
    Column("last frame", priority=7, short="last"),
    Column("error", justify="left", wraps=True),
)
#: the archive's disk use, after ``snapshots`` when the daemon has an archive
ARCHIVE_COLUMN = Column("archive", priority=8)


def format_size(n: Any) -> str:
    """Bytes in the unit that keeps three digits or fewer (1,000-based: kB, MB, GB)."""
    if not isinstance(n, int) or isinstance(n, bool):
        return "-"
    if n < 1000:
        return f"{n} B"
    units = ("kB", "MB", "GB", "TB")
    size, i = n / 1000, 0
    while size >= 1000 and i < len(units) - 1:
        size, i = size / 1000, i + 1
    return f"{size:.1f} {units[i]}"


def format_archive(entry: dict[str, Any]) -> str:
    """A pair's archive on disk: its size, UTC days and bytes a day."""
    days = entry.get("archive_days")
    if not isinstance(days, int) or not days:
        return ""
    return (f"{format_size(entry.get('archive_bytes'))}, {days} d "
            f"({format_size(entry.get('archive_bytes_per_day'))}/d)")


def format_pairs(pairs: list[dict[str, Any]], *, now: float) -> FitTable:
    """One row per tracked pair: feed state since when, counters, history size, the
    archive's disk use (when the daemon has one), last error."""
    archive = any("archive_bytes" in e for e in pairs)
    columns = list(PAIRS_COLUMNS)
    if archive:
        columns.insert(8, ARCHIVE_COLUMN)  # after snapshots
    rows: list[list[Cell]] = []
    for entry in sorted(pairs, key=lambda e: str(e.get("pair", ""))):
        row: list[Cell] = [
            Text(str(entry.get("pair", "?"))),  # Text: what a daemon sent is not markup
            format_state(entry.get("state")),
            format_age(_seconds(entry.get("since")), now),
            _num(entry, "frames"),
            _num(entry, "mismatches"),
            _num(entry, "resyncs"),
            _num(entry, "reconnects"),
            _num(entry, "snapshots"),
        ]
        if archive:
            row.append(format_archive(entry))
        row += [format_age(_seconds(entry.get("last_frame_time")), now),
                Text(str(entry.get("error") or ""))]
        rows.append(row)
    return FitTable(columns, rows)


# -- kms analyze --------------------------------------------------------------------------------


def _v(value: Any, suffix: str = "") -> str:
    return "-" if value is None else f"{value}{suffix}"


def format_summary(s: dict[str, Any]) -> Table:
    """The summary as a two-column table."""
    table = Table(title=Text(f"{s.get('pair')}: {s.get('from') or '-'} → {s.get('to') or '-'}"),
                  title_justify="left", box=box.SIMPLE_HEAD, show_header=False)
    table.add_column("what", style="dim", overflow="fold")
    table.add_column("value", justify="right", overflow="fold")
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


#: ``kms replay``'s columns; the pair and its checksum failures stay whatever the width
REPLAY_COLUMNS = (
    Column("pair", justify="left"),
    Column("frames", priority=3),
    Column("verified", priority=4),
    Column("bad crc"),
    Column("crossed", priority=5),
    Column("best bid", short="bid", priority=1),
    Column("best ask", short="ask", priority=1),
    Column("levels", priority=2),
)


def format_replay(file: Path, result: ReplayResult) -> FitTable:
    """One row per pair of a recording: frames, what verified, the book it ended with."""
    rows: list[list[Cell]] = []
    for pair, st in sorted(result.pairs.items()):
        mism = Text(str(st.mismatches), style="red") if st.mismatches else "0"
        rows.append([Text(pair), str(st.frames), str(st.verified), mism, str(st.crossed),
                     st.best_bid or "-", st.best_ask or "-",
                     f"{st.bid_levels}/{st.ask_levels}"])
    return FitTable(REPLAY_COLUMNS, rows, title=f"{file.name}: {result.lines} frames")


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


def format_status(pid: int | None, url: str | None, health: dict[str, Any] | None, *,
                  roles: Sequence[str] | None = None, other: object = None) -> str:
    """Whether a daemon holds this state directory, and what its own /health says: its
    gateway's or, in a process without one, its health listener's (``roles`` and ``url`` as
    the daemon noted them; ``other``: the pid of another process that answered there)."""
    head = f"daemon: {'pid ' + str(pid) if pid else 'not running here'}"
    if roles is not None:
        head += f" ({', '.join(roles)})"
    if url is None:
        head += "; no /health here (no gateway role, daemon.health_port unset)"
    else:
        label = "health" if roles is not None and "gateway" not in roles else "gateway"
        answer = ("up" if health else f"answered by another process (pid {other}), not this one"
                  if other is not None else "not answering")
        head += f"; {label} {url}: {answer}"
    lines = [head]
    if health:
        lines.append(f"status: {health.get('status')}; roles: "
                     f"{', '.join(health.get('roles') or [])}")
        feed = health.get("feed") or {}
        pairs = sorted((feed.get("pairs") or {}).items())
        conns = feed.get("connections") or []
        # /health lists a few pairs of many (pairs_omitted): the states count them all
        total = len(pairs) + int(feed.get("pairs_omitted") or 0)
        if len(conns) > 1 or total > STATUS_PAIRS:
            states = ", ".join(f"{n} {s}" for s, n in sorted((feed.get("states") or {}).items()))
            up = sum(1 for c in conns if c.get("connected"))
            lines.append(f"feed: {total} pairs ({states}); {up} of {len(conns)} "
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


#: ``kms bars``' columns; the start and the close stay whatever the width
BARS_COLUMNS = (
    Column("start (UTC)", justify="left", short="start"),
    Column("open", priority=3),
    Column("high", priority=2),
    Column("low", priority=2),
    Column("close"),
    Column("spread", priority=4),
    Column("bps", priority=5),
    Column("imbalance", priority=6, short="imb."),
    Column("snapshots", priority=1, short="snaps"),
    Column("gap", justify="center", priority=1),
)


def format_bars(answer: dict[str, Any]) -> FitTable:
    """One row per bar: its start, the mid's OHLC, the spread, the count, and gaps."""
    found = answer.get("bars") or []
    title = (f"{_txt(answer.get('pair'))}: {len(found)} bar{'s' if len(found) != 1 else ''} "
             f"of {_txt(answer.get('every'))}, oldest first")
    rows: list[list[Cell]] = [
        [_txt(b.get("time")), _txt(b.get("open")), _txt(b.get("high")), _txt(b.get("low")),
         _txt(b.get("close")), _txt(b.get("spread_mean")), _txt(b.get("spread_bps_mean")),
         _txt(b.get("imbalance_mean")), _txt(b.get("snapshots")),
         "yes" if b.get("gap") else ""]
        for b in found]
    return FitTable(BARS_COLUMNS, rows, title=title)
