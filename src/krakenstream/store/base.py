"""The history store's one interface, and the query rules every implementation shares.

A history store keeps the newest ``history_limit`` snapshots per pair, keyed by
``(pair, ts)``. Both backends (SQLite, Redis) implement :class:`HistoryStore` and pass the same
contract suite; what they share beyond the interface lives here, so the two cannot drift apart:

* :func:`plan` turns a query's arguments into a concrete :class:`Window` (validated, the limit
  clamped to the cap) or ``None`` when the answer is empty without asking the backend;
* :func:`paged` walks a window in chunks by keyset (each chunk bounded by the last timestamp
  seen), so a 10,000-snapshot export never sits in one list and no read transaction or cursor
  is held open across ``await`` points;
* :func:`decode_rows` turns stored JSON back into snapshots off the event loop (decoding costs
  tens of microseconds per snapshot: 10,000 of them would stall the loop for a third of a
  second).

The cap is exact at query time: a backend finds the timestamp of the ``history_limit``-th
newest snapshot of the pair (its *floor*) whenever more than that are stored, and the window
never reaches below it, however lazily or by whichever writer the trimming is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ..core.snapshot import Snapshot
from ..errors import InputError

log = logging.getLogger(__name__)

Order = Literal["desc", "asc"]
ORDERS: tuple[Order, ...] = ("desc", "asc")

#: snapshots fetched per round trip while streaming a history query
CHUNK_SIZE = 500

#: timestamps are epoch milliseconds; these bound an open-ended window (and stay exact in a
#: Redis sorted-set score, a double, which holds integers up to 2**53 exactly)
TS_MIN = -(2**53)
TS_MAX = 2**53

#: (ts, the snapshot's stored JSON)
Row = tuple[int, bytes]


class HistoryStore(Protocol):
    """The newest ``history_limit`` snapshots per pair, queryable by time."""

    async def open(self) -> None:
        """Connect and create the schema if missing (idempotent, safe for several processes)."""
        ...

    async def close(self) -> None: ...

    async def add(self, snaps: Sequence[Snapshot]) -> int:
        """Store snapshots; returns how many were newly stored and are kept.

        A ``(pair, ts)`` already stored is ignored, so writing the same snapshot twice (a bus
        redelivery) stores it once. A snapshot older than the pair's kept window is trimmed
        at once and not counted.
        """
        ...

    async def latest(self, pair: str) -> Snapshot | None: ...

    def history(
        self,
        pair: str,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        order: Order = "desc",
    ) -> AsyncIterator[Snapshot]:
        """Snapshots with ``since <= ts <= until`` (epoch ms), at most ``limit``, streamed."""
        ...

    def history_json(
        self,
        pair: str,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        order: Order = "desc",
    ) -> AsyncIterator[bytes]:
        """As :meth:`history`, but each snapshot's stored JSON, as stored (no re-encode)."""
        ...

    async def count(self, pair: str) -> int: ...

    async def pairs(self) -> list[str]:
        """Pairs with at least one snapshot stored, sorted."""
        ...

    async def ping(self) -> None:
        """Raise :class:`~krakenstream.errors.BackendUnavailable` unless the backend answers."""
        ...


@dataclass(frozen=True, slots=True)
class Window:
    """A query made concrete: ``lo <= ts <= hi``, at most ``limit`` rows, in ``order``."""

    pair: str
    lo: int
    hi: int
    limit: int
    order: Order

    def above(self, floor: int | None) -> Window | None:
        """This window cut to ``ts >= floor`` (the cap's floor), or None if nothing is left."""
        if floor is None or floor <= self.lo:
            return self
        if floor > self.hi:
            return None
        return Window(self.pair, floor, self.hi, self.limit, self.order)


def plan(
    pair: str,
    *,
    since: int | None,
    until: int | None,
    limit: int | None,
    order: str,
    cap: int,
) -> Window | None:
    """Validate a query and make it concrete; None means the answer is empty.

    Raises :class:`~krakenstream.errors.InputError` for an unknown order, a negative limit or
    a bound that is not an integer (a gateway passes user input straight through).
    """
    if order not in ORDERS:
        raise InputError(f"order must be 'desc' or 'asc', got {order!r}")
    for name, value in (("since", since), ("until", until), ("limit", limit)):
        if value is not None and (type(value) is not int):
            raise InputError(f"{name} must be an integer, got {value!r}")
    if limit is not None and limit < 0:
        raise InputError(f"limit must not be negative, got {limit}")
    lo = TS_MIN if since is None else max(since, TS_MIN)
    hi = TS_MAX if until is None else min(until, TS_MAX)
    n = cap if limit is None else min(limit, cap)
    if n == 0 or lo > hi:
        return None
    return Window(pair, lo, hi, n, "asc" if order == "asc" else "desc")


#: fetch up to ``n`` rows of ``window``'s pair with ``lo <= ts <= hi``, in the window's order
Fetch = Callable[[Window, int, int, int], Awaitable[list[Row]]]


async def paged(window: Window, fetch: Fetch, chunk: int = CHUNK_SIZE) -> AsyncIterator[list[Row]]:
    """Walk ``window`` in chunks, moving the bound past the last timestamp seen each time."""
    lo, hi, left = window.lo, window.hi, window.limit
    while left > 0 and lo <= hi:
        rows = await fetch(window, lo, hi, min(chunk, left))
        if not rows:
            return
        left -= len(rows)
        yield rows
        if len(rows) < chunk:
            return
        if window.order == "desc":
            hi = rows[-1][0] - 1
        else:
            lo = rows[-1][0] + 1


class PagedHistory:
    """``history`` and ``history_json`` for a store that can give the oldest timestamp it
    still keeps for a pair (``_floor_ts``) and fetch one chunk of a range (``_fetch``).

    Both stores share this: the query is validated and cut to the cap (:func:`plan`,
    :meth:`Window.above`), then walked chunk by chunk (:func:`paged`); snapshots are decoded
    in a worker thread, a chunk at a time, so a 10,000-row export never stalls the loop.
    """

    history_limit: int
    chunk_size: int

    async def _floor_ts(self, pair: str) -> int | None:
        raise NotImplementedError

    async def _fetch(self, window: Window, lo: int, hi: int, n: int) -> list[Row]:
        raise NotImplementedError

    async def _chunks(
        self, pair: str, since: int | None, until: int | None, limit: int | None, order: Order
    ) -> AsyncIterator[list[Row]]:
        window = plan(pair, since=since, until=until, limit=limit, order=order,
                      cap=self.history_limit)
        if window is None:
            return
        window = window.above(await self._floor_ts(pair))
        if window is None:
            return
        async for rows in paged(window, self._fetch, self.chunk_size):
            yield rows

    async def history(
        self,
        pair: str,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        order: Order = "desc",
    ) -> AsyncIterator[Snapshot]:
        async for rows in self._chunks(pair, since, until, limit, order):
            for snap in await asyncio.to_thread(decode_rows, rows):
                yield snap

    async def history_json(
        self,
        pair: str,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        order: Order = "desc",
    ) -> AsyncIterator[bytes]:
        async for rows in self._chunks(pair, since, until, limit, order):
            for _, data in rows:
                yield data


def decode_rows(rows: Sequence[Row]) -> list[Snapshot]:
    """Stored JSON back to snapshots; a row that does not decode is logged and skipped.

    A stored row is our own output, so a bad one means a damaged database or a foreign
    writer: one such row must not make a whole export fail.
    """
    out: list[Snapshot] = []
    for ts, data in rows:
        try:
            out.append(Snapshot.from_json(data))
        except ValueError as exc:
            log.warning("history row skipped: ts=%d error=%s", ts, exc)
    return out
