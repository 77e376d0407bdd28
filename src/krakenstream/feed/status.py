"""What the feed client tells the world: per-pair states, their counters, and state changes.

Plain values, no I/O: the daemon's health output, the gateway and the tests read these, and
the client hands out copies so a reader never sees a half-updated record.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class PairState(enum.StrEnum):
    """Where one pair's book stands.

    ``connecting``: subscribed or subscribing, no verified book yet on this connection.
    ``live``: the last frame verified; the book may be read and published.
    ``resyncing``: a checksum mismatch or a crossed book voided it; unsubscribe + subscribe
    under way. ``stale``: the connection dropped or went quiet; the book is not being updated.
    ``error``: the exchange refused the subscription (``error`` holds its message).
    """

    CONNECTING = "connecting"
    LIVE = "live"
    RESYNCING = "resyncing"
    STALE = "stale"
    ERROR = "error"


@dataclass(slots=True)
class PairStatus:
    """One pair's state and counters (times are wall-clock epoch seconds)."""

    pair: str
    state: PairState = PairState.CONNECTING
    #: book frames received for this pair (snapshots and updates)
    frames: int = 0
    #: frames whose checksum did not match
    mismatches: int = 0
    #: frames that verified but left best bid >= best ask
    crossed: int = 0
    #: unsubscribe + subscribe cycles after a mismatch or a crossed book
    resyncs: int = 0
    #: reconnections of the connection while this pair was tracked
    reconnects: int = 0
    last_frame_time: float | None = None
    #: when ``state`` last changed
    since: float | None = None
    #: the exchange's message while in state ``error``; else the last one seen, or None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pair": self.pair,
            "state": self.state.value,
            "frames": self.frames,
            "mismatches": self.mismatches,
            "crossed": self.crossed,
            "resyncs": self.resyncs,
            "reconnects": self.reconnects,
            "last_frame_time": self.last_frame_time,
            "since": self.since,
            "error": self.error,
        }


@dataclass(slots=True)
class ConnectionStatus:
    """The connection as a whole (one per client)."""

    url: str
    #: which connection of a pool ("" for a lone client)
    name: str = ""
    #: ``connecting``, ``connected``, ``waiting`` (to retry at ``retry_at``) or ``stopped``
    state: str = "connecting"
    connected: bool = False
    #: connections opened after the first one
    reconnects: int = 0
    #: attempts that could not open a connection (refused, timed out, rejected handshake)
    connect_failures: int = 0
    #: the exchange's last ``status`` frame: online, maintenance, cancel_only, post_only
    system: str | None = None
    #: frames that could not be decoded (counted, logged rate-limited, skipped)
    bad_frames: int = 0
    #: times the frame queue filled up and the connection was dropped to resync everything
    overflows: int = 0
    #: state-change events dropped because no one read them (oldest dropped first)
    events_dropped: int = 0
    last_frame_time: float | None = None
    connected_since: float | None = None
    #: why the last connection ended, or why the last attempt failed
    last_error: str | None = None
    #: while ``waiting``: when the next attempt goes (epoch seconds), and the wait chosen
    retry_at: float | None = None
    retry_in: float | None = None
    #: ``Exceeded msg rate`` answers (each slowed the subscribe pacing down)
    rate_limited: int = 0
    #: pairs tracked on this connection
    pairs: int = 0
    #: the exchange's id of the connection (from its ``status`` frame; can exceed int64)
    connection_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "name": self.name,
            "state": self.state,
            "connected": self.connected,
            "reconnects": self.reconnects,
            "connect_failures": self.connect_failures,
            "system": self.system,
            "bad_frames": self.bad_frames,
            "overflows": self.overflows,
            "events_dropped": self.events_dropped,
            "last_frame_time": self.last_frame_time,
            "connected_since": self.connected_since,
            "last_error": self.last_error,
            "retry_at": self.retry_at,
            "retry_in": self.retry_in,
            "rate_limited": self.rate_limited,
            "pairs": self.pairs,
            "connection_id": self.connection_id,
        }


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """A pair changed state; ``reason`` says why in a few words (for logs and health)."""

    pair: str
    old: PairState
    new: PairState
    reason: str
    time: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "pair": self.pair,
            "old": self.old.value,
            "new": self.new.value,
            "reason": self.reason,
            "time": self.time,
        }
