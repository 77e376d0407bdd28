"""How often a pool of connections may open one: pure (times passed in).

Kraken bans an address that opens more than about 150 connections in ten minutes. Each
connection backs off on its own (:mod:`krakenstream.core.backoff`), but many connections
cut at once (a network blip) would all retry at once: :class:`ConnectBudget` spaces every
attempt of the pool at least ``spacing`` seconds apart and allows at most ``limit`` in any
``window`` seconds, so a pool stays well under the ban however many connections it has.
"""

from __future__ import annotations

from collections import deque

from ..errors import InputError

#: the window Kraken counts connection attempts over
WINDOW = 600.0


class ConnectBudget:
    """``reserve(now)`` answers when the next attempt may go, and counts it."""

    __slots__ = ("limit", "window", "spacing", "_slots")

    def __init__(self, limit: int, *, spacing: float = 0.0, window: float = WINDOW) -> None:
        if limit < 1 or spacing < 0 or window <= 0:
            raise InputError("a connect budget needs limit >= 1, spacing >= 0, window > 0")
        self.limit = limit
        self.window = window
        self.spacing = spacing
        self._slots: deque[float] = deque()

    def reserve(self, now: float) -> float:
        """The time (>= ``now``) at which one more attempt may go; it is counted then."""
        slots = self._slots
        while slots and slots[0] <= now - self.window:
            slots.popleft()
        at = now if not slots else max(now, slots[-1] + self.spacing)
        if len(slots) >= self.limit:
            # the attempt `limit` places back must have left the window first
            at = max(at, slots[-self.limit] + self.window)
        slots.append(at)
        return at

    def used(self, now: float) -> int:
        """Attempts counted in the window that ends at ``now``."""
        return sum(1 for t in self._slots if now - self.window < t <= now)
