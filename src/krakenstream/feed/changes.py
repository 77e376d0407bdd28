"""Pair state changes handed on: to a hook at once, to one reader through a bounded queue,
and to whoever waits for "something changed" (``wait_live``).

The queue's policy when full: the oldest change is dropped and counted — a reader wants the
latest states, and a client nobody reads from must not grow without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable

from .status import FeedEvent

log = logging.getLogger(__name__)

OnStateChange = Callable[[FeedEvent], None]


class StateChanges:
    """Fan-out of :class:`FeedEvent`; ``close()`` ends the reader's iteration."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[FeedEvent | None] = asyncio.Queue(size)
        self._changed = asyncio.Event()
        self.closed = False
        #: changes dropped because no one read them (oldest first)
        self.dropped = 0

    def publish(self, events: Iterable[FeedEvent], hook: OnStateChange | None) -> None:
        """Hand on ``events`` in order (an exception in ``hook`` is logged, not raised)."""
        for event in events:
            self._put(event)
            if hook is not None:
                try:
                    hook(event)
                except Exception:
                    log.exception("feed on_state_change hook failed pair=%s", event.pair)
        self.notify()

    def notify(self) -> None:
        """Wake every :meth:`wait` (something worth a look changed)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self) -> None:
        """Until the next :meth:`notify`."""
        await self._changed.wait()

    def close(self) -> None:
        self.closed = True
        self._put(None)
        self.notify()

    async def __aiter__(self) -> AsyncIterator[FeedEvent]:
        while True:
            if self.closed and self._queue.empty():
                return
            ev = await self._queue.get()
            if ev is None:
                return
            yield ev

    def _put(self, event: FeedEvent | None) -> None:
        q = self._queue
        if q.full():
            q.get_nowait()
            self.dropped += 1
        q.put_nowait(event)
