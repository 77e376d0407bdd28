"""Heavy reads in bounded numbers: a summary or an export holds a slot while it runs.

A summary walks a pair's whole window and an export streams it; each costs a worker thread,
a store connection and a few megabytes while it runs (20 summaries at once took 1.6 GB that
the process never gave back). :class:`Slots` lets ``size`` of one kind run at once; one more
is answered at once with 503 and ``Retry-After`` (:class:`~krakenstream.errors.Overloaded`)
rather than queued without bound. ``gateway.max_summaries`` and ``gateway.max_exports`` set
the sizes; ``/health`` and ``/metrics`` show the slots in use and the refusals.

Non-blocking on purpose: a request never waits for a slot, so a flood of heavy reads cannot
pile up connections and memory behind the ones running; the client retries after the time it
was given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ...errors import Overloaded

#: seconds a refused heavy read is told to wait (``Retry-After``)
RETRY_AFTER = 2


class Slot:
    """One slot taken; :meth:`release` gives it back (once, however often it is called;
    also when the slot is collected without it, so a dropped response cannot leak it)."""

    __slots__ = ("_give_back",)

    def __init__(self, give_back: Callable[[], None]) -> None:
        self._give_back: Callable[[], None] | None = give_back

    def release(self) -> None:
        give_back, self._give_back = self._give_back, None
        if give_back is not None:
            give_back()

    def __del__(self) -> None:
        self.release()


class Slots:
    """At most ``size`` of one kind of heavy read at once (see the module docstring)."""

    def __init__(self, what: str, size: int, setting: str,
                 on_refusal: Callable[[], None] | None = None) -> None:
        self.what, self.size, self.setting = what, size, setting
        self.busy = 0
        self.refused = 0
        self._on_refusal = on_refusal

    def take(self) -> Slot:
        """A slot, or :class:`Overloaded` (503, ``Retry-After``) when all are busy."""
        if self.busy >= self.size:
            self.refused += 1
            if self._on_refusal is not None:
                self._on_refusal()
            raise Overloaded(
                f"{self.size} {self.what} are running, the most at once ({self.setting}): "
                f"try again in {RETRY_AFTER} s", retry_after=RETRY_AFTER)
        self.busy += 1
        return Slot(self._give_back)

    def _give_back(self) -> None:
        self.busy -= 1

    def state(self) -> dict[str, int]:
        return {"busy": self.busy, "size": self.size, "refused": self.refused}


class HeldStreamingResponse(StreamingResponse):
    """A streamed answer that gives its slot back when it has been sent, or has failed."""

    def __init__(self, content: Any, slot: Slot, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()
