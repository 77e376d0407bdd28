"""``kms stream``: live order books from the daemon, one panel per pair, updated per snapshot.

What is shown is a pure function of a :class:`StreamState` (:func:`format_frame`), and the
state changes only through :meth:`StreamState.apply` with the time passed in, so both are
tested without a terminal or a clock. The loop around them reads the client's events, polls
``/api/pairs`` every few seconds for feed states, and redraws; every redraw happens on the
event loop's thread, so nothing reads the state while it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer
from rich import box
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..client import (
    Connected,
    KmsClient,
    Reconnecting,
    SnapshotEvent,
    StatusEvent,
    StreamEvent,
)
from ..core.pairs import spell_pair
from ..errors import KmsError, NotFound
from .accounts import ServerOption, open_client
from .common import err_console, errors_handled, out_console
from .pairs import STATE_STYLES, format_age

#: snapshot arrivals kept per pair to measure the update rate, and the window they count over
RATE_SAMPLES = 32
RATE_WINDOW = 10.0
#: seconds between two polls of ``/api/pairs`` for feed states, and between two redraws
POLL_EVERY = 2.0
REDRAW_EVERY = 0.5
#: ``--once`` waits this long for every pair's first snapshot by default
ONCE_TIMEOUT = 10.0


# -- state ------------------------------------------------------------------------------------


@dataclass
class PairView:
    """What the screen knows about one pair."""

    pair: str
    snapshot: dict[str, Any] | None = None
    #: the daemon's feed state for the pair (live, resyncing, stale, error, connecting)
    feed_state: str | None = None
    feed_reason: str | None = None
    #: our WebSocket to the daemon: connecting, connected or reconnecting
    connection: str = "connecting"
    connection_reason: str | None = None
    retry_in: float | None = None
    #: ``time`` and ``ts`` of the snapshot whose book last differed from the one before
    last_change: str | None = None
    last_change_ts: int | None = None
    received: int = 0
    #: monotonic arrival times of the latest snapshots
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=RATE_SAMPLES))

    def rate(self, now: float) -> float | None:
        """Snapshots per second over the last :data:`RATE_WINDOW` seconds."""
        recent = [t for t in self.arrivals if now - t <= RATE_WINDOW]
        if len(recent) < 2:
            return 0.0 if self.received >= 2 else None
        return (len(recent) - 1) / max(now - recent[0], recent[-1] - recent[0], 1e-9)


@dataclass
class StreamState:
    """Every pair on screen, in the order asked for."""

    views: dict[str, PairView] = field(default_factory=dict)

    @classmethod
    def for_pairs(cls, pairs: Iterable[str]) -> StreamState:
        state = cls()
        for pair in pairs:
            state.view(pair)
        return state

    def view(self, pair: str) -> PairView:
        key = spell_pair(pair)
        if key not in self.views:
            self.views[key] = PairView(key)
        return self.views[key]

    def ready(self) -> bool:
        """Every pair has had a snapshot."""
        return all(v.snapshot is not None for v in self.views.values())

    def apply(self, event: StreamEvent, now: float) -> None:
        """Fold one client event in; ``now`` is a monotonic time."""
        view = self.view(event.pair)
        if isinstance(event, SnapshotEvent):
            old = view.snapshot
            if old is None or old.get("bids") != event.data.get("bids") or old.get(
                "asks"
            ) != event.data.get("asks"):
                view.last_change = event.data.get("time")
                ts = event.data.get("ts")
                view.last_change_ts = ts if isinstance(ts, int) else None
            view.snapshot = event.data
            view.received += 1
            view.arrivals.append(now)
            view.connection, view.connection_reason, view.retry_in = "connected", None, None
        elif isinstance(event, StatusEvent):
            view.feed_state, view.feed_reason = event.state, event.reason
        elif isinstance(event, Connected):
            view.connection, view.connection_reason, view.retry_in = "connected", None, None
        elif isinstance(event, Reconnecting):
            view.connection = "reconnecting"
            view.connection_reason, view.retry_in = event.reason, event.delay

    def apply_pairs(self, entries: Iterable[dict[str, Any]]) -> None:
        """Feed states from ``/api/pairs`` for the pairs on screen; a pair missing from the
        list is no longer tracked."""
        seen = set()
        for entry in entries:
            key = spell_pair(str(entry.get("pair", "")))
            seen.add(key)
            if key in self.views:
                view = self.views[key]
                view.feed_state = str(entry.get("state") or "") or None
                error = entry.get("error")
                view.feed_reason = str(error) if error and view.feed_state == "error" else None
        for key, view in self.views.items():
            if key not in seen:
                view.feed_state, view.feed_reason = "untracked", None


# -- rendering (pure) -------------------------------------------------------------------------


def _dec(text: Any) -> Decimal | None:
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None


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


def _status_line(view: PairView) -> Text:
    if view.connection == "reconnecting":
        retry = f", next try in {view.retry_in:.1f}s" if view.retry_in is not None else ""
        return Text(f"reconnecting… ({view.connection_reason}{retry})", style="bold red")
    state = view.feed_state or ("connecting" if view.snapshot is None else "live")
    text = Text(state, style=STATE_STYLES.get(state, "dim"))
    if view.feed_reason:
        text.append(f" ({view.feed_reason})", style="dim")
    return text


def format_pair(view: PairView, *, depth: int, now: float, wall: float) -> Panel:
    """One pair's panel. ``now`` is monotonic (update rate), ``wall`` epoch seconds (ages)."""
    title = Text.assemble((view.pair, "bold"), "  ", _status_line(view))
    snap = view.snapshot
    if snap is None:
        body: RenderableType = Text("waiting for the first snapshot…", style="dim")
        return Panel(body, title=title, title_align="left", border_style="dim")
    rate = view.rate(now)
    facts = Text()
    facts.append("mid ", style="dim").append(str(snap.get("mid") or "—"))
    facts.append("   spread ", style="dim").append(str(snap.get("spread") or "—"))
    if snap.get("spread_bps") is not None:
        facts.append(f" ({snap['spread_bps']} bps)")
    facts.append("   seq ", style="dim").append(str(snap.get("seq", "—")))
    changed = Text()
    changed.append("last change ", style="dim").append(view.last_change or "—")
    if view.last_change_ts is not None:
        changed.append(f" ({format_age(view.last_change_ts / 1000, wall)})", style="dim")
    changed.append("   rate ", style="dim").append(
        "—" if rate is None else f"{rate:.1f}/s"
    )
    border = "red" if view.connection == "reconnecting" else STATE_STYLES.get(
        view.feed_state or "live", "dim").split()[-1]
    return Panel(
        Group(facts, changed, format_ladder(snap, depth)),
        title=title, title_align="left", border_style=border,
    )


def format_frame(state: StreamState, *, depth: int, now: float, wall: float) -> RenderableType:
    """Every pair's panel, side by side when the terminal is wide enough."""
    panels = [format_pair(v, depth=depth, now=now, wall=wall) for v in state.views.values()]
    return Columns(panels, equal=True)


# -- the loop ---------------------------------------------------------------------------------


def _check_tracked(client: KmsClient, pairs: Sequence[str],
                   entries: list[dict[str, Any]]) -> None:
    tracked = {spell_pair(str(e.get("pair", ""))) for e in entries}
    for pair in pairs:
        if spell_pair(pair) not in tracked:
            raise NotFound(
                f"{spell_pair(pair)} is not tracked by the daemon at {client.base_url}",
                hint=f"kms track {spell_pair(pair)}",
            )


async def run_stream(
    client: KmsClient,
    pairs: Sequence[str],
    *,
    depth: int = 10,
    once: bool = False,
    duration: float | None = None,
    first_frame_within: float = ONCE_TIMEOUT,
    console: Console | None = None,
) -> StreamState:
    """Show ``pairs`` until Ctrl-C, ``duration`` seconds, or (``once``) a first full frame
    (waiting at most ``first_frame_within`` seconds for it).

    Asks ``/api/pairs`` first, so a daemon that is down, a rejected token or an untracked
    pair fails at once with the daemon's message instead of an empty screen.
    """
    console = console or out_console
    # one connection per pair however often it is named: two would count each snapshot twice
    pairs = list(dict.fromkeys(spell_pair(p) for p in pairs))
    entries = await asyncio.to_thread(client.pairs)
    _check_tracked(client, pairs, entries)
    state = StreamState.for_pairs(pairs)
    state.apply_pairs(entries)

    def frame() -> RenderableType:
        return format_frame(state, depth=depth, now=time.monotonic(), wall=time.time())

    async with contextlib.aclosing(client.stream(pairs)) as events:
        if once:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(first_frame_within):
                    async for event in events:
                        state.apply(event, time.monotonic())
                        if state.ready():
                            break
            console.print(frame())
            return state
        from rich.live import Live

        with Live(frame(), console=console, auto_refresh=False, transient=False) as live:

            def redraw() -> None:
                live.update(frame(), refresh=True)

            async def tick() -> None:
                while True:
                    await asyncio.sleep(REDRAW_EVERY)
                    redraw()

            async def poll() -> None:
                while True:
                    await asyncio.sleep(POLL_EVERY)
                    try:
                        found = await asyncio.to_thread(client.pairs)
                    except KmsError:
                        continue  # the reconnecting status already says what is wrong
                    state.apply_pairs(found)

            helpers = [asyncio.create_task(tick()), asyncio.create_task(poll())]
            try:
                async with asyncio.timeout(duration):
                    async for event in events:
                        state.apply(event, time.monotonic())
                        redraw()
            except TimeoutError:
                if duration is None:
                    raise
            finally:
                for task in helpers:
                    task.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
    return state


def stream(
    pairs: Annotated[
        list[str], typer.Argument(metavar="PAIR...", help="Pairs to show, e.g. ETH/USD BTC/USD.")
    ],
    depth: Annotated[
        int, typer.Option("--depth", min=1, max=1000, help="Levels per side.")
    ] = 10,
    once: Annotated[
        bool, typer.Option("--once", help="Print one frame once every pair has a snapshot, "
                           "then exit (1 if a pair had none within --timeout).")
    ] = False,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0.0, help="Stop after this many seconds."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="With --once: seconds to wait.")
    ] = ONCE_TIMEOUT,
    server: ServerOption = None,
) -> None:
    """Live order books of PAIR... from the daemon, updated on every snapshot (Ctrl-C quits)."""
    with errors_handled(), open_client(server) as client:
        try:
            state = asyncio.run(run_stream(
                client, pairs, depth=depth, once=once, duration=duration,
                first_frame_within=timeout))
        except KeyboardInterrupt:
            return  # the way to leave a live view: not an error
        if once and not state.ready():
            missing = [v.pair for v in state.views.values() if v.snapshot is None]
            err_console.print(
                f"[yellow]warning:[/] no snapshot within {timeout:g} s for {', '.join(missing)}"
            )
            raise typer.Exit(1)
