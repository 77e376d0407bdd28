"""History that spans the window store and the Parquet archive, as one series.

The window store holds the newest rows of a pair (a contiguous suffix of its history: every
row it holds is newer than every row it trimmed); the archive holds everything the store
ever accepted, up to the last hourly cut. So an answer takes the store's rows where the store
still has them and the archive's below the store's oldest, and the two meet without a seam:

* newest first: the store's rows, then the archive's older than the oldest the store gave;
* oldest first: the archive's rows older than the store's oldest, then the store's. The
  store keeps trimming while a long archive read runs, so its first row may turn out newer
  than the oldest it had when asked: the archive fills that stretch before the store goes on.

The store is read with the flags as published (``published_flags``), the archive holds them
as published too (the roller cuts them so), and each snapshot comes out marked by the one
gap rule (:func:`~krakenstream.core.gaps.mark_gaps`) against its stored predecessor,
wherever either came from; the oldest row of an answer is marked against the row just
before it (one extra read). The archive is read in a
worker thread, a file at a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Literal, TypeAlias

import pyarrow as pa

from ..core.gaps import follows
from ..core.snapshot import Snapshot
from ..errors import InputError
from .archive import Archive
from .archive.columns import Previous, gap_marks, last_row, reverse, with_marks
from .archive.export import series_table
from .base import ORDERS, TS_MAX, TS_MIN, HistoryStore


def _marked(snap: Snapshot, previous: Snapshot | None) -> Snapshot:
    gap = not follows(previous, snap)
    return snap if gap == snap.gap_before else dataclasses.replace(snap, gap_before=gap)


#: store rows gathered into one part of :meth:`SpanningHistory.tables`
PART_ROWS = 2_000

#: a stretch of the series: store rows (snapshots) or archive rows (a wide table)
Part: TypeAlias = "list[Snapshot] | pa.Table"


class SpanningHistory:
    """``history`` over ``store`` and ``archive`` (None: the store alone, marks derived)."""

    def __init__(self, store: HistoryStore, archive: Archive | None) -> None:
        self.store = store
        self.archive = archive

    async def _archive_parts(self, pair: str, lo: int, hi: int, order: str,
                             tables: bool) -> AsyncIterator[Part]:
        if self.archive is None or lo > hi:
            return
        way: Literal["asc", "desc"] = "desc" if order == "desc" else "asc"
        parts: Iterator[Part] = (self.archive.tables(pair, lo, hi, way) if tables
                                 else self.archive.chunks(pair, lo, hi, way))
        while True:
            part = await asyncio.to_thread(next, parts, None)
            if part is None:
                return
            yield part

    async def _store_first(self, pair: str, lo: int, hi: int, order: str) -> Snapshot | None:
        rows = self.store.history(pair, since=lo, until=hi, limit=1,
                                  order="desc" if order == "desc" else "asc",
                                  published_flags=True)
        try:
            return await anext(rows, None)
        finally:
            await rows.aclose()  # type: ignore[attr-defined]

    async def before(self, pair: str, ts: int) -> Snapshot | None:
        """The stored snapshot just before ``ts``: the store's, else the archive's."""
        found = await self._store_first(pair, TS_MIN, ts - 1, "desc")
        if found is None and self.archive is not None:
            found = await asyncio.to_thread(self.archive.before, pair, ts)
        return found

    async def oldest_in_store(self, pair: str) -> int | None:
        first = await self._store_first(pair, TS_MIN, TS_MAX, "asc")
        return None if first is None else first.ts

    async def _parts_desc(self, pair: str, lo: int, hi: int,
                          tables: bool) -> AsyncIterator[Part]:
        oldest: int | None = None
        batch: list[Snapshot] = []
        async for snap in self.store.history(pair, since=lo, until=hi, order="desc",
                                             published_flags=True):
            oldest = snap.ts
            batch.append(snap)
            if len(batch) >= PART_ROWS:
                yield batch
                batch = []
        if batch:
            yield batch
        async for part in self._archive_parts(pair, lo, hi if oldest is None else oldest - 1,
                                              "desc", tables):
            yield part

    async def _parts_asc(self, pair: str, lo: int, hi: int,
                         tables: bool) -> AsyncIterator[Part]:
        probe = await self._store_first(pair, lo, hi, "asc")
        top = hi if probe is None else probe.ts - 1
        async for part in self._archive_parts(pair, lo, top, "asc", tables):
            yield part
        if probe is None:
            return
        filled = False
        batch: list[Snapshot] = []
        async for snap in self.store.history(pair, since=probe.ts, until=hi, order="asc",
                                             published_flags=True):
            if not filled:
                filled = True
                # rows trimmed from the store while the archive was read: the archive has them
                async for part in self._archive_parts(pair, probe.ts, snap.ts - 1, "asc",
                                                      tables):
                    yield part
            batch.append(snap)
            if len(batch) >= PART_ROWS:
                yield batch
                batch = []
        if batch:
            yield batch

    def _parts(self, pair: str, lo: int, hi: int, order: str,
               tables: bool) -> AsyncIterator[Part]:
        return (self._parts_asc(pair, lo, hi, tables) if order == "asc"
                else self._parts_desc(pair, lo, hi, tables))

    async def _raw(self, pair: str, lo: int, hi: int, order: str) -> AsyncIterator[Snapshot]:
        parts = self._parts(pair, lo, hi, order, tables=False)
        try:
            async for part in parts:
                assert isinstance(part, list)
                for snap in part:
                    yield snap
        finally:
            await parts.aclose()  # type: ignore[attr-defined]

    async def history(
        self,
        pair: str,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        order: str = "desc",
    ) -> AsyncIterator[Snapshot]:
        """Snapshots with ``since <= ts <= until``, at most ``limit`` (None: all), in
        ``order``, each marked ``gap_before`` by the gap rule."""
        bounds = _bounds(since, until, limit, order)
        if bounds is None:
            return
        lo, hi = bounds
        if order == "asc":
            previous: Snapshot | None = None
            n = 0
            rows = self._raw(pair, lo, hi, "asc")
            try:
                async for snap in rows:
                    if n == 0:
                        previous = await self.before(pair, snap.ts)
                    yield _marked(snap, previous)
                    previous = snap
                    n += 1
                    if n == limit:
                        return
            finally:
                await rows.aclose()  # type: ignore[attr-defined]
            return
        # newest first: a row's mark needs the next one (its predecessor), one row ahead
        pending: Snapshot | None = None
        n = 0
        raw = self._raw(pair, lo, hi, "desc")
        try:
            async for snap in raw:
                if pending is not None:
                    yield _marked(pending, snap)
                    n += 1
                    if n == limit:
                        return
                pending = snap
            if pending is not None:
                yield _marked(pending, await self.before(pair, pending.ts))
        finally:
            await raw.aclose()  # type: ignore[attr-defined]

    async def tables(
        self,
        pair: str,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        order: str = "asc",
        depth: int = 10,
    ) -> AsyncIterator[pa.Table]:
        """As :meth:`history`, as wide tables with a ``pair`` column (:mod:`.archive.export`,
        at least ``depth`` levels a side), ``gap_before`` marked: the archive's stretches as
        read, the store's converted a part at a time, for exports that work a column at a
        time. Two tables may differ in their types (a precision or depth that changed)."""
        bounds = _bounds(since, until, limit, order)
        if bounds is None:
            return
        lo, hi = bounds
        parts = self._parts(pair, lo, hi, order, tables=True)
        try:
            marked = (self._tables_asc(pair, parts, depth) if order == "asc"
                      else self._tables_desc(pair, parts, depth, limit))
            left = limit
            async for table in marked:
                if left is not None and table.num_rows >= left:
                    yield table.slice(0, left)
                    return
                if left is not None:
                    left -= table.num_rows
                yield table
        finally:
            await parts.aclose()  # type: ignore[attr-defined]

    async def _previous(self, pair: str, ts: int) -> Previous | None:
        found = await self.before(pair, ts)
        return None if found is None else (found.seq, found.origin)

    async def _tables_asc(self, pair: str, parts: AsyncIterator[Part],
                          depth: int) -> AsyncIterator[pa.Table]:
        previous: Previous | None = None
        first = True
        async for part in parts:
            table = await asyncio.to_thread(_as_table, part, pair, depth)
            if first:
                first = False
                previous = await self._previous(pair, _ts(table, 0))
            marks = gap_marks(table, previous)
            previous = last_row(table)
            yield with_marks(table, marks)

    async def _tables_desc(self, pair: str, parts: AsyncIterator[Part], depth: int,
                           limit: int | None) -> AsyncIterator[pa.Table]:
        """Newest first: a table's oldest row is marked against the next table's newest."""
        pending: pa.Table | None = None
        left = limit
        async for part in parts:
            table = await asyncio.to_thread(_as_table, part, pair, depth)
            if pending is not None:
                yield _marked_desc(pending, _row(table, 0))
                if left is not None:
                    left -= pending.num_rows
            pending = table
            if left is not None and pending.num_rows > left:
                # the limit ends inside this table: the row after the last one wanted is
                # its predecessor, at hand
                asc = reverse(pending.slice(0, left + 1))
                yield reverse(with_marks(asc, gap_marks(asc, None))).slice(0, left)
                return
        if pending is not None:
            yield _marked_desc(pending, await self._previous(
                pair, _ts(pending, pending.num_rows - 1)))


def _bounds(since: int | None, until: int | None, limit: int | None,
            order: str) -> tuple[int, int] | None:
    """A query's ``lo``/``hi``, or None when its answer is empty; raises for bad input."""
    if order not in ORDERS:
        raise InputError(f"order must be 'desc' or 'asc', got {order!r}")
    if limit is not None and limit < 0:
        raise InputError(f"limit must not be negative, got {limit}")
    lo = TS_MIN if since is None else max(since, TS_MIN)
    hi = TS_MAX if until is None else min(until, TS_MAX)
    if lo > hi or limit == 0:
        return None
    return lo, hi


def _as_table(part: Part, pair: str, depth: int) -> pa.Table:
    if isinstance(part, list):
        return series_table(part, depth)
    return part.add_column(1, "pair", pa.array([pair] * part.num_rows, pa.string()))


def _ts(table: pa.Table, i: int) -> int:
    return int(table.column("time").cast(pa.int64())[i].as_py())


def _row(table: pa.Table, i: int) -> Previous:
    return last_row(table.slice(i, 1))


def _marked_desc(table: pa.Table, previous: Previous | None) -> pa.Table:
    """A newest-first table marked, ``previous`` the row just before its oldest."""
    asc = reverse(table)
    return reverse(with_marks(asc, gap_marks(asc, previous)))
