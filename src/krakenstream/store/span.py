"""History that spans the window store and the Parquet archive, as one series.

The window store holds the newest rows of a pair (a contiguous suffix of its history: every
row it holds is newer than every row it trimmed); the archive holds everything the store
ever accepted, up to the last hourly cut. So an answer takes the store's rows where the store
still has them and the archive's below the store's oldest, and the two meet without a seam:

* newest first: the store's rows, then the archive's older than the oldest the store gave;
* oldest first: the archive's rows older than the store's oldest, then the store's. The
  store keeps trimming while a long archive read runs, so its first row may turn out newer
  than the oldest it had when asked: the archive fills that stretch before the store goes on.

Each snapshot comes out marked by the one gap rule (:func:`~krakenstream.core.gaps.
mark_gaps`) against its stored predecessor, wherever either came from; the oldest row of an
answer is marked against the row just before it (one extra read). The archive is read in a
worker thread, a file at a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator

from ..core.gaps import follows
from ..core.snapshot import Snapshot
from ..errors import InputError
from .archive import Archive
from .base import ORDERS, TS_MAX, TS_MIN, HistoryStore


def _marked(snap: Snapshot, previous: Snapshot | None) -> Snapshot:
    gap = not follows(previous, snap)
    return snap if gap == snap.gap_before else dataclasses.replace(snap, gap_before=gap)


class SpanningHistory:
    """``history`` over ``store`` and ``archive`` (None: the store alone, marks derived)."""

    def __init__(self, store: HistoryStore, archive: Archive | None) -> None:
        self.store = store
        self.archive = archive

    async def _archive_rows(self, pair: str, lo: int, hi: int,
                            order: str) -> AsyncIterator[Snapshot]:
        if self.archive is None or lo > hi:
            return
        chunks: Iterator[list[Snapshot]] = self.archive.chunks(
            pair, lo, hi, "desc" if order == "desc" else "asc")
        while True:
            chunk = await asyncio.to_thread(next, chunks, None)
            if chunk is None:
                return
            for snap in chunk:
                yield snap

    async def _store_first(self, pair: str, lo: int, hi: int, order: str) -> Snapshot | None:
        rows = self.store.history(pair, since=lo, until=hi, limit=1,
                                  order="desc" if order == "desc" else "asc")
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

    async def _raw_desc(self, pair: str, lo: int, hi: int) -> AsyncIterator[Snapshot]:
        oldest: int | None = None
        async for snap in self.store.history(pair, since=lo, until=hi, order="desc"):
            oldest = snap.ts
            yield snap
        async for snap in self._archive_rows(pair, lo, hi if oldest is None else oldest - 1,
                                             "desc"):
            yield snap

    async def _raw_asc(self, pair: str, lo: int, hi: int) -> AsyncIterator[Snapshot]:
        probe = await self._store_first(pair, lo, hi, "asc")
        top = hi if probe is None else probe.ts - 1
        async for snap in self._archive_rows(pair, lo, top, "asc"):
            yield snap
        if probe is None:
            return
        filled = False
        async for snap in self.store.history(pair, since=probe.ts, until=hi, order="asc"):
            if not filled:
                filled = True
                # rows trimmed from the store while the archive was read: the archive has them
                async for old in self._archive_rows(pair, probe.ts, snap.ts - 1, "asc"):
                    yield old
            yield snap

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
        if order not in ORDERS:
            raise InputError(f"order must be 'desc' or 'asc', got {order!r}")
        if limit is not None and limit < 0:
            raise InputError(f"limit must not be negative, got {limit}")
        lo = TS_MIN if since is None else max(since, TS_MIN)
        hi = TS_MAX if until is None else min(until, TS_MAX)
        if lo > hi or limit == 0:
            return
        if order == "asc":
            previous: Snapshot | None = None
            n = 0
            rows = self._raw_asc(pair, lo, hi)
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
        raw = self._raw_desc(pair, lo, hi)
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
