"""The history store's one interface, and the query rules every implementation shares.

A history store keeps the newest ``history_limit`` snapshots per pair, keyed by
``(pair, ts)``. Both backends (SQLite, Redis) implement :class:`HistoryStore` and pass the same
contract suite; what they share beyond the interface lives here, so the two cannot drift apart:

* :func:`plan` turns a query's arguments into a concrete :class:`Window` (validated, the limit
  clamped to the cap) or ``None`` when the answer is empty without asking the backend;
* :func:`paged` walks a window in chunks by keyset (each chunk bounded by the last timestamp
  seen), so a 10,000-snapshot export never sits in one list and no read transaction or cursor
  is held open across ``await`` points;
* :class:`PagedHistory` decodes and renders rows off the event loop, a chunk at a time, and
  marks ``gap_before`` from each row's stored neighbours (read-time gaps: see its docstring).

The cap is exact at query time: a backend finds the timestamp of the ``history_limit``-th
newest snapshot of the pair (its *floor*) whenever more than that are stored, and the window
never reaches below it, however lazily or by whichever writer the trimming is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar, runtime_checkable

from ..core.codec import Encoded
from ..core.gaps import follows
from ..core.record import Record, decode_record
from ..core.snapshot import Snapshot
from ..errors import InputError

log = logging.getLogger(__name__)

T = TypeVar("T")

Order = Literal["desc", "asc"]
ORDERS: tuple[Order, ...] = ("desc", "asc")

#: snapshots fetched per round trip while streaming a history query, at most
CHUNK_SIZE = 500
#: stored bytes fetched per round trip, at most (a chunk is rendered whole in a worker thread,
#: about five times larger as JSON): 500 rows are 85 KB at depth 10 but 6 MB at depth 1000,
#: so the rows per round trip follow the rows' size (:func:`rows_for`), the first round trip
#: asking for :data:`FIRST_CHUNK` rows, before any size is known
CHUNK_BYTES = 128 * 1024
FIRST_CHUNK = 32

#: timestamps are epoch milliseconds; these bound an open-ended window (and stay exact in a
#: Redis sorted-set score, a double, which holds integers up to 2**53 exactly)
TS_MIN = -(2**53)
TS_MAX = 2**53

#: (ts, the snapshot's stored bytes)
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

    async def latest(self, pair: str) -> Snapshot | None:
        """The newest snapshot, ``gap_before`` derived as in :meth:`history`."""
        ...

    def history(
        self,
        pair: str,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        order: Order = "desc",
        published_flags: bool = False,
    ) -> AsyncIterator[Snapshot]:
        """Snapshots with ``since <= ts <= until`` (epoch ms), at most ``limit``, streamed;
        ``gap_before`` is derived from the stored neighbours (see :class:`PagedHistory`), or,
        with ``published_flags``, the flag as published (for a copy that derives its own,
        such as the archive)."""
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
        """As :meth:`history`, each snapshot as ``Snapshot.to_json()`` would write it."""
        ...

    def history_csv(
        self,
        pair: str,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        order: Order = "desc",
    ) -> AsyncIterator[str]:
        """As :meth:`history`, each snapshot as its CSV line (``Snapshot.csv_row()``)."""
        ...

    async def count(self, pair: str) -> int: ...

    async def pairs(self) -> list[str]:
        """Pairs with at least one snapshot stored, sorted."""
        ...

    async def ping(self) -> None:
        """Raise :class:`~krakenstream.errors.BackendUnavailable` unless the backend answers."""
        ...


@runtime_checkable
class EncodedWrites(Protocol):
    """A store that takes snapshots already in their stored form (Redis): the history
    writer hands on what the Kafka bus carried without decoding and encoding it again."""

    async def add_encoded(self, rows: Sequence[Encoded]) -> int:
        """:meth:`HistoryStore.add` for snapshots already encoded (``row.data`` stored as
        it is, keyed by ``row.pair`` and ``row.ts``); the same answer and the same rules."""
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


def rows_for(rows: Sequence[Row], most: int) -> int:
    """Rows to fetch next: :data:`CHUNK_BYTES` of rows the size of ``rows``, 1 to ``most``."""
    size = sum(len(data) for _, data in rows) / max(1, len(rows))
    return max(1, min(most, int(CHUNK_BYTES / max(size, 1.0))))


async def paged(window: Window, fetch: Fetch, chunk: int = CHUNK_SIZE) -> AsyncIterator[list[Row]]:
    """Walk ``window`` in chunks of at most ``chunk`` rows and about :data:`CHUNK_BYTES`,
    moving the bound past the last timestamp seen each time."""
    lo, hi, left = window.lo, window.hi, window.limit
    n = min(chunk, FIRST_CHUNK)
    while left > 0 and lo <= hi:
        asked = min(n, left)
        rows = await fetch(window, lo, hi, asked)
        if not rows:
            return
        left -= len(rows)
        yield rows
        if len(rows) < asked:
            return
        n = rows_for(rows, chunk)
        if window.order == "desc":
            hi = rows[-1][0] - 1
        else:
            lo = rows[-1][0] + 1


#: render one record with its derived mark (runs in a worker thread, a chunk at a time)
Render = Callable[[Record, bool], T]


class PagedHistory:
    """``latest``, ``history``, ``history_json`` and ``history_csv`` for a store that can give
    the oldest timestamp it still keeps for a pair (``_floor_ts``) and fetch up to ``n`` rows
    of a ts range in either order (``_fetch``).

    Both stores share this: the query is validated and cut to the cap (:func:`plan`,
    :meth:`Window.above`), then walked chunk by chunk (:func:`paged`); rows are decoded and
    rendered in a worker thread, a chunk at a time, so a 10,000-row export never stalls the
    loop.

    **Gaps are derived here, at read time, for every answer** (the rule:
    :mod:`krakenstream.core.gaps`). A row is marked ``gap_before`` when its publisher set the
    flag, or when the row stored just before it is not its true predecessor (another
    ``origin``, or a ``seq`` that is not one less). Each row's stored predecessor is read
    with it: oldest first, the row just below the window is looked up once before the first
    chunk, and each row is the next one's predecessor; newest first, every chunk fetches one
    row beyond what it returns, reaching below the window's ``since`` if need be. Only rows
    the cap still keeps count as predecessors: a pair's oldest kept row, whose predecessor
    was trimmed, keeps its published flag alone. Because nothing about a hole is written, a
    late redelivery that fills it makes the mark disappear by itself, and a snapshot lost
    anywhere on the way (bus, broker, restart, handover) is marked wherever history is read.
    """

    history_limit: int
    chunk_size: int

    async def _floor_ts(self, pair: str) -> int | None:
        raise NotImplementedError

    async def _fetch(self, pair: str, lo: int, hi: int, n: int, order: Order) -> list[Row]:
        raise NotImplementedError

    async def latest(self, pair: str) -> Snapshot | None:
        """The newest snapshot, marked against the one stored before it."""
        rows = await self._fetch(pair, TS_MIN, TS_MAX, 2 if self.history_limit > 1 else 1,
                                 "desc")
        # two rows: cheaper than a thread hop
        out = render_desc(rows, 1, lambda rec, mark: rec.snapshot(pair, mark))
        return out[0] if out else None

    async def _rendered(
        self, pair: str, since: int | None, until: int | None, limit: int | None,
        order: Order, render: Render[T],
    ) -> AsyncIterator[list[T]]:
        window = plan(pair, since=since, until=until, limit=limit, order=order,
                      cap=self.history_limit)
        if window is None:
            return
        floor = await self._floor_ts(pair)
        window = window.above(floor)
        if window is None:
            return
        #: the oldest ts a predecessor may have: below it rows are beyond the cap
        bottom = TS_MIN if floor is None else floor
        if window.order == "asc":
            before = (await self._fetch(pair, bottom, window.lo - 1, 1, "desc")
                      if window.lo > bottom else [])
            prev = decode_records(before)
            previous = prev[0] if prev else None

            async def fetch(w: Window, lo: int, hi: int, n: int) -> list[Row]:
                return await self._fetch(w.pair, lo, hi, n, "asc")

            async for rows in paged(window, fetch, self.chunk_size):
                out, previous = await asyncio.to_thread(render_asc, rows, previous, render)
                yield out
            return
        hi, left = window.hi, window.limit
        size = min(self.chunk_size, FIRST_CHUNK)
        while left > 0:
            n = min(size, left)
            rows = await self._fetch(pair, bottom, hi, n + 1, "desc")
            kept = 0
            while kept < min(n, len(rows)) and rows[kept][0] >= window.lo:
                kept += 1
            if not kept:
                return
            yield await asyncio.to_thread(render_desc, rows[: kept + 1], kept, render)
            left -= kept
            if kept < n:
                return
            size = rows_for(rows, self.chunk_size)
            hi = rows[kept - 1][0] - 1

    async def history(
        self,
        pair: str,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        order: Order = "desc",
        published_flags: bool = False,
    ) -> AsyncIterator[Snapshot]:
        def render(rec: Record, mark: bool) -> Snapshot:
            return rec.snapshot(pair, rec.gap_before if published_flags else mark)

        async for chunk in self._rendered(pair, since, until, limit, order, render):
            for snap in chunk:
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
        async for chunk in self._rendered(pair, since, until, limit, order,
                                          lambda rec, mark: rec.json(pair, mark)):
            for data in chunk:
                yield data

    async def history_csv(
        self,
        pair: str,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        order: Order = "desc",
    ) -> AsyncIterator[str]:
        async for chunk in self._rendered(pair, since, until, limit, order,
                                          lambda rec, mark: rec.csv(pair, mark)):
            for line in chunk:
                yield line


def render_asc(rows: Sequence[Row], previous: Record | None,
               render: Render[T]) -> tuple[list[T], Record | None]:
    """Rows oldest first after ``previous`` (the stored row before them, or None), each
    rendered with its mark; and the last record, the next chunk's predecessor. One row is
    decoded at a time, so a chunk's records never all sit in memory together."""
    out: list[T] = []
    for rec in iter_records(rows):
        out.append(render(rec, not follows(previous, rec)))
        previous = rec
    return out, previous


def render_desc(rows: Sequence[Row], n: int, render: Render[T]) -> list[T]:
    """The first ``n`` of ``rows`` (newest first), each marked against the row after it; a
    row beyond the ``n`` th is only read as the last one's predecessor."""
    out: list[T] = []
    pending: Record | None = None
    for rec in iter_records(rows[:n]):
        if pending is not None:
            out.append(render(pending, not follows(rec, pending)))
        pending = rec
    if pending is not None:
        beyond = next(iter_records(rows[n : n + 1]), None)
        out.append(render(pending, not follows(beyond, pending)))
    return out


def iter_records(rows: Iterable[Row]) -> Iterator[Record]:
    """Stored rows as records, one at a time; a row that does not decode is logged and
    skipped (a stored row is our own output, so a bad one means a damaged database or a
    foreign writer: one such row must not make a whole export fail)."""
    for ts, data in rows:
        try:
            yield decode_record(data)
        except ValueError as exc:
            log.warning("history row skipped: ts=%d error=%s", ts, exc)


def decode_records(rows: Iterable[Row]) -> list[Record]:
    """:func:`iter_records` as a list."""
    return list(iter_records(rows))
