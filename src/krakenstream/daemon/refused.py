"""Pairs Kraken refused, after the orderbook role dropped them: kept listed for a while.

A pair Kraken does not list is refused at subscription with Kraken's words. Tracked on, it
would sit in ``error`` for ever, and before issue 14 it was asked for again on every
reconnect (10,000 of them made ``/health`` 2.4 MB and every reconnect resend them all). So the
orderbook role drops it from what it tracks as soon as it is refused, and keeps here what
whoever tracked it needs to read why: the pair, Kraken's words and when, for ``keep``
seconds, the newest ``limit`` of them. ``/api/pairs`` lists them in ``error``; tracking the
pair again (a retry) or untracking it forgets it at once.

Pure: times are passed in (epoch seconds), nothing runs on its own.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ..feed.status import PairState, PairStatus

#: refused pairs listed at most (the newest kept)
REFUSED_LISTED = 100


@dataclass(frozen=True, slots=True)
class Refusal:
    pair: str
    #: the exchange's words
    error: str
    #: when it refused (epoch seconds)
    at: float


class RefusedPairs:
    """The newest ``limit`` refusals of the last ``keep`` seconds (``keep`` 0: none kept)."""

    def __init__(self, keep: float, limit: int = REFUSED_LISTED) -> None:
        self.keep = keep
        self.limit = limit
        self._items: OrderedDict[str, Refusal] = OrderedDict()
        #: refusals recorded since the start (the metric ``kms_feed_refused``)
        self.total = 0

    def add(self, pair: str, error: str, at: float) -> None:
        self.total += 1
        self._items.pop(pair, None)
        if self.keep <= 0:
            return
        self._items[pair] = Refusal(pair, error, at)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def discard(self, pair: str) -> bool:
        """Forget ``pair``; whether it was listed."""
        return self._items.pop(pair, None) is not None

    def listed(self, now: float) -> list[Refusal]:
        """What is still listed at ``now``, oldest first (expired ones are forgotten)."""
        expired = [p for p, r in self._items.items() if now - r.at >= self.keep]
        for p in expired:
            del self._items[p]
        return list(self._items.values())

    def __contains__(self, pair: object) -> bool:
        return pair in self._items

    def __len__(self) -> int:
        return len(self._items)

    def statuses(self, now: float) -> dict[str, PairStatus]:
        """What is listed, as the statuses of pairs in ``error`` (for ``/api/pairs``)."""
        return {r.pair: PairStatus(r.pair, state=PairState.ERROR, since=r.at, error=r.error)
                for r in self.listed(now)}
