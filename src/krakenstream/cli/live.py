"""The live view's state and its frames: what ``kms stream`` (and ``kms demo``) show.

What is shown is a pure function of a :class:`StreamState` (:func:`format_frame`), and the
state changes only through :meth:`StreamState.apply` with the time passed in, so both are
tested without a terminal or a clock. The loop that feeds it is :mod:`.stream`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from ..client import Connected, Reconnecting, SnapshotEvent, StatusEvent, StreamEvent
from ..core.pairs import spell_pair
from .render import STATE_STYLES, format_age, format_ladder

#: snapshot arrivals kept per pair to measure the update rate, and the window they count over
RATE_SAMPLES = 32
RATE_WINDOW = 10.0


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


# -- rendering -------------------------------------------------------------------------


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
