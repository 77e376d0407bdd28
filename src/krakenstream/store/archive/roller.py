"""The archive's writer: cuts each pair's stored history into files, one roll at a time.

The history writer stores a batch in the window store, then tells the roller (:meth:`note`);
the roller keeps, per pair, only where its open roll starts and how many rows it holds. When
a roll closes — the pair's first snapshot of a new hour arrives, or the roll reached
``roll_rows`` — a worker task reads the roll's rows back from the window store and writes
them as one file (in a thread). The open roll is never held in memory: with thousands of
pairs an hour of rows each would be gigabytes, while the window store holds them anyway
(10,000 per pair, 2.8 hours at one a second; ``roll_rows`` is kept at most half the window).

That also makes a crash cheap: what was not yet cut is still in the store, so on
:meth:`start` the roller takes, for each pair, the archive's newest ts and cuts every newer
stored row (the rebuild is the normal path, not a special one). Rows the store trimmed before
they were archived (the writer was behind by more than the window) cannot be rebuilt: that is
logged, counted in ``lost_rolls``, and the first archived row after the hole is written with
``gap_before`` set, so every reader sees the loss.

A snapshot older than what is already archived for its pair (a late redelivery) is kept
aside and written as a small file of its own with the next cut; readers deduplicate by ts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ...core.codec import Encoded
from ...core.snapshot import Snapshot
from ...errors import KmsError
from ..base import HistoryStore
from .files import Archive
from .layout import ArchiveFile

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
#: late snapshots held per pair at most before the next cut (beyond: dropped, logged)
MAX_LATE = 10_000
#: seconds between checks for rolls left open by pairs that went quiet, and for retention
IDLE_CHECK_S = 60.0
#: seconds to wait before retrying a cut that failed (store down, disk full)
RETRY_S = 5.0


@dataclass
class RollerStats:
    files: int = 0
    rows: int = 0
    late: int = 0
    lost_rolls: int = 0
    errors: int = 0
    pruned: int = 0


@dataclass
class _Roll:
    #: the first ts not archived yet (None: not known yet, ask the archive)
    since: int | None = None
    #: start of the roll window (the hour) the pending rows are in
    window: int | None = None
    count: int = 0
    last_ts: int | None = None
    #: rows of closed windows waiting for their cut
    due_rows: int = 0

    @property
    def lag(self) -> int:
        """Rows noted but not archived yet (about: duplicates count too)."""
        return self.due_rows + self.count


def split_rolls(rows: Sequence[Snapshot], roll_ms: int, roll_rows: int) -> list[list[Snapshot]]:
    """Rows (sorted by ts) cut at every roll-window boundary and every ``roll_rows`` rows."""
    out: list[list[Snapshot]] = []
    window: int | None = None
    for s in rows:
        w = s.ts - s.ts % roll_ms
        if not out or w != window or len(out[-1]) >= roll_rows:
            out.append([])
            window = w
        out[-1].append(s)
    return out


class ArchiveRoller:
    """Keeps ``archive`` up to date with ``store`` (see the module). ``await start()``,
    ``note(batch)`` after each stored batch, ``await stop()`` (cuts the open rolls)."""

    def __init__(
        self,
        archive: Archive,
        store: HistoryStore,
        *,
        history_limit: int,
        roll_rows: int = 3_600,
        roll_ms: int = HOUR_MS,
        keep_days: int = 0,
        clock: Callable[[], float] = time.time,
        idle_check_s: float = IDLE_CHECK_S,
    ) -> None:
        self.archive = archive
        self.store = store
        self.history_limit = history_limit
        self.roll_rows = max(1, min(roll_rows, history_limit // 2))
        self.roll_ms = roll_ms
        self.keep_days = keep_days
        self._clock = clock
        self.idle_check_s = idle_check_s
        self.stats = RollerStats()
        self._rolls: dict[str, _Roll] = {}
        self._late: dict[str, list[Snapshot]] = {}
        #: pair -> cut everything up to this ts (coalesced: one entry per pair at most);
        #: None: only late snapshots to write
        self._due: dict[str, int | None] = {}
        #: pair -> the ts a cut under way reads up to (a row at or below it noted meanwhile
        #: may have been missed by the read: it is kept aside like a late one)
        self._cutting: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._busy = False
        #: set after each cut (keep_up waits on it)
        self._progress = asyncio.Event()
        #: rows a pair may have unarchived before keep_up makes the writer wait
        self._max_lag = history_limit - self.roll_rows
        #: a pair noted past ``_max_lag`` since keep_up last found none (only note sets it)
        self._lagging = False
        self._last_prune_day: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, *, catch_up: bool = True) -> None:
        """Catch up with the store (the rebuild after a crash), then follow ``note``.

        ``catch_up`` cuts every pair the store holds at once: right for the one writer of an
        embedded daemon. Several history writers sharing a store (Kafka consumer group) pass
        False: each then catches a pair up when it first notes it, so only the writer that
        owns a pair archives it (the same rows are not written twice by two writers)."""
        await asyncio.to_thread(self.archive.clean_temp)
        for pair in await self.store.pairs() if catch_up else []:
            roll = self._rolls.setdefault(pair, _Roll())
            roll.since = await self._archived_since(pair)
            latest = await self.store.latest(pair)
            if latest is not None:
                # every complete window before the newest row's is cut now; the rest is
                # the open roll, cut when its window closes
                window = latest.ts - latest.ts % self.roll_ms
                roll.window, roll.last_ts = window, latest.ts
                roll.count = 1  # something is pending (how much, the store knows)
                self._due[pair] = window - 1
        self._task = asyncio.create_task(self._run(), name="kms-archive")
        self._wake.set()

    async def stop(self, *, cut: bool = True) -> None:
        """Stop the worker, then cut every open roll (partial windows included). Without
        ``cut`` the open rolls stay in the store for the next start (as after a crash)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if not cut:
            return
        for pair, roll in self._rolls.items():
            if roll.last_ts is not None:
                self._set_due(pair, roll.last_ts)
        await self._cut_due()

    async def idle(self) -> None:
        """Wait until nothing is due or being cut (for tests and benchmarks)."""
        while self._task is not None and (self._due or self._wake.is_set() or self._busy):
            self._idle.clear()
            await self._idle.wait()

    # -- noting what was stored --------------------------------------------------------------

    def note(self, snaps: Sequence[Snapshot] | Sequence[Encoded]) -> None:
        """Snapshots the window store just accepted (as snapshots, or encoded as the Kafka
        bus carried them). Cheap: no I/O, no copy kept (except late snapshots, below what is
        already archived)."""
        for s in snaps:
            roll = self._rolls.get(s.pair)
            if roll is None:
                # first seen: what the store holds before this window is cut now (the
                # rebuild, for a writer that did not catch every pair up at start)
                roll = self._rolls[s.pair] = _Roll()
                self._set_due(s.pair, s.ts - s.ts % self.roll_ms - 1)
            cutting = self._cutting.get(s.pair)
            if (roll.since is not None and s.ts < roll.since) or (
                    cutting is not None and s.ts <= cutting):
                self._keep_late(s)
                continue
            window = s.ts - s.ts % self.roll_ms
            if roll.window is None:
                roll.window = window
            elif window > roll.window:
                self._set_due(s.pair, window - 1)
                roll.window, roll.due_rows, roll.count = window, roll.due_rows + roll.count, 0
            roll.count += 1
            if roll.due_rows + roll.count > self._max_lag:
                self._lagging = True
            roll.last_ts = s.ts if roll.last_ts is None else max(roll.last_ts, s.ts)
            if roll.count >= self.roll_rows:
                self._set_due(s.pair, roll.last_ts)
                roll.due_rows, roll.count = roll.due_rows + roll.count, 0

    async def keep_up(self) -> None:
        """Wait while a pair has so many rows not archived yet that the window store could
        trim them first (the worker fell behind: a slow disk). Returns at once normally:
        the history writer calls it after each batch, so the archive paces the writer
        instead of losing rows. Only :meth:`note` makes a pair lag more, and it says when one
        went past the bound: otherwise this looks at no pair (a look at all 3,000 took 0.24
        ms, timeit, after each of the six batches of a 3,000-pair tick)."""
        if not self._lagging:
            return
        while self._task is not None and not self._task.done() and any(
                r.lag > self._max_lag for r in self._rolls.values()):
            self._progress.clear()
            await self._progress.wait()
        self._lagging = False

    def _keep_late(self, s: Snapshot | Encoded) -> None:
        late = self._late.setdefault(s.pair, [])
        if len(late) >= MAX_LATE:
            log.warning("archive: more than %d late snapshots of %s; dropping %d",
                        MAX_LATE, s.pair, s.ts)
            return
        late.append(s if isinstance(s, Snapshot) else s.snapshot())
        self._set_due(s.pair, None)

    def _set_due(self, pair: str, upto: int | None) -> None:
        prev = self._due.get(pair)
        self._due[pair] = prev if upto is None else upto if prev is None else max(prev, upto)
        self._wake.set()

    # -- the worker ------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.idle_check_s):
                    await self._wake.wait()
            except TimeoutError:
                self._due_idle_rolls()
            self._wake.clear()
            await self._cut_due()
            await self._maybe_prune()
            if not self._due:
                self._idle.set()
            elif not self._wake.is_set():
                await asyncio.sleep(RETRY_S)  # a cut failed: try again later
                self._wake.set()

    def _due_idle_rolls(self) -> None:
        """A pair that went quiet never starts a new window: cut its roll once the window
        has ended by the clock."""
        now_ms = self._clock() * 1000
        for pair, roll in self._rolls.items():
            if roll.window is not None and roll.last_ts is not None and roll.count > 0 \
                    and now_ms >= roll.window + self.roll_ms:
                self._set_due(pair, roll.window + self.roll_ms - 1)
                roll.due_rows, roll.count = roll.due_rows + roll.count, 0

    async def _cut_due(self) -> None:
        self._busy = True
        try:
            await self._cut_all()
        finally:
            self._busy = False

    async def _cut_all(self) -> None:
        due, self._due = self._due, {}
        for pair, upto in due.items():
            if upto is not None:
                self._cutting[pair] = upto
            roll = self._rolls.setdefault(pair, _Roll())
            taken = roll.due_rows
            try:
                await self._cut(pair, upto)
                roll.due_rows = max(0, roll.due_rows - taken)
                self._progress.set()
            except (KmsError, OSError, ValueError) as exc:
                self.stats.errors += 1
                log.warning("archive: cutting %s up to %d failed (%s); retrying", pair, upto,
                            exc)
                self._set_due(pair, upto)
            finally:
                self._cutting.pop(pair, None)

    async def _archived_since(self, pair: str) -> int | None:
        newest = await asyncio.to_thread(self.archive.newest_ts, pair)
        return None if newest is None else newest + 1

    async def _cut(self, pair: str, upto: int | None) -> None:
        roll = self._rolls.setdefault(pair, _Roll())
        if roll.since is None:
            roll.since = await self._archived_since(pair)
        late = self._late.pop(pair, [])
        if late:
            try:
                await self._write(late)
            except BaseException:
                self._late[pair] = late + self._late.get(pair, [])
                raise
            self.stats.late += len(late)
        since = roll.since
        if upto is None or (since is not None and upto < since):
            return
        # the flags as published: the archive's readers derive the marks themselves, so a
        # late snapshot that fills a hole after this cut still clears the mark
        rows = [s async for s in self.store.history(pair, since=since, until=upto,
                                                     order="asc", published_flags=True)]
        if rows and since is not None and rows[0].ts > since:
            rows[0] = await self._mark_if_lost(pair, since, rows[0])
        for chunk in split_rolls(rows, self.roll_ms, self.roll_rows):
            await self._write(chunk)
        roll.since = upto + 1

    async def _mark_if_lost(self, pair: str, since: int, first: Snapshot) -> Snapshot:
        """Rows between the archive's newest and the store's oldest were trimmed from a full
        store before being archived: they are gone. Say so where readers look.

        The store keeps a contiguous suffix of the history: rows just after ``since`` can only
        be missing because of a trim if ``first`` is the oldest row the store still holds and
        the store is full (it trims only then)."""
        rows = self.store.history(pair, limit=1, order="asc")
        try:
            oldest = await anext(rows, None)
        finally:
            await rows.aclose()  # type: ignore[attr-defined]
        if oldest is None or oldest.ts < first.ts:
            return first  # the store still reaches below: nothing between was trimmed
        if await self.store.count(pair) < self.history_limit:
            return first  # the store never trimmed: nothing was there to lose
        self.stats.lost_rolls += 1
        log.warning("archive: %s rows from %s to %s were trimmed from the window store before "
                    "being archived (the archive fell behind); marked as a gap", pair,
                    _iso(since), _iso(first.ts))
        return dataclasses.replace(first, gap_before=True)

    async def _write(self, rows: list[Snapshot]) -> list[ArchiveFile]:
        files = await asyncio.to_thread(self.archive.write, rows)
        self.stats.files += len(files)
        self.stats.rows += len(rows)
        return files

    async def _maybe_prune(self) -> None:
        if self.keep_days <= 0:
            return
        today = datetime.fromtimestamp(self._clock(), tz=UTC).date()
        if self._last_prune_day == today.isoformat():
            return
        removed = await asyncio.to_thread(self.archive.prune, self.keep_days, today)
        self._last_prune_day = today.isoformat()
        self.stats.pruned += len(removed)
        for pair, day in removed:
            log.info("archive: removed %s %s (archive.keep_days = %d)", pair, day,
                     self.keep_days)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1000, tz=UTC).isoformat()
