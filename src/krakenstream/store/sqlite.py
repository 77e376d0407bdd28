"""Snapshot history in one SQLite file: the embedded default, with one writer thread.

Layout. History is two tables of ``(pair, ts, data)`` rows, a row in one or the other:

* ``settled``, a ``WITHOUT ROWID`` table whose primary key ``(pair, ts)`` is also its storage
  order, so one pair's history is contiguous on disk: a 10,000-row range query reads
  neighbouring pages instead of rows interleaved with every other pair's, and trimming
  deletes from the low end of the same range;
* ``recent``, the newest rows as they came (a rowid table, with a unique index on
  ``(pair, ts)`` for reads and duplicates): a tick of 3,000 pairs is appended on some 130
  new pages (and touches the small index's hundred-odd), where inserting it into
  ``settled`` dirtied a page a pair (3,000 pages, 12 MB through the WAL a second, and the
  writer's biggest cost). Once it holds :data:`SETTLE_ROWS` rows and no write has come for
  :data:`SETTLE_IDLE_S` (between two ticks), ``recent`` moves into ``settled`` in one
  transaction, in key order: each pair's rows of those ticks go onto its newest page
  together. A writer that is never idle moves it at :data:`SETTLE_FORCE` times that.

Every read takes both (a compound ``SELECT`` that SQLite answers by merging the two key
orders), and a view ``snapshots`` gives both to whoever reads the file by hand. ``data`` is
the snapshot in its compact form (:mod:`krakenstream.core.codec`, about 170 bytes at depth
10); rows written before schema 2 hold the snapshot's JSON and are read as they are (the
first byte tells).

Schema 2 only renamed schema 1's ``json`` column to ``data``; schema 3 renames the one table
of schemas 1 and 2, ``snapshots``, to ``settled`` and adds ``recent`` and the view. Both
are changes to the schema, not to any row: instant on a file of any size, inside the
opening transaction. The pair stays the text of its name in the key rather than a small id
from a table of pairs: that costs about six bytes a row (of about 200), and keeps every row
of an older file where it is, with no migration to run over gigabytes.
``pair_counts(pair, n)`` is kept in the same transaction as every insert and trim, which makes
``count`` and the trim decision O(1) instead of an index walk per write.

The cap is exact in every answer, not on disk: a pair may hold up to its :func:`slack` (1 to
2 % of a cap of 100 or more) beyond it, then loses the excess in one delete. Readers cut at
the cap-th newest row (``_floor``), as they must anyway for a cap lowered since the rows were
written. Trimming every pair's oldest row at every tick dirtied a page a pair at the old end
of its range besides the one at the new end, and doubled the writer's time at the cap.

Checkpoints: the writer never copies the WAL into the file itself (``wal_autocheckpoint=0``);
a checkpointer thread with its own connection does, once a second after writes, so a commit
only appends its pages to the WAL. At 3,000 pairs a tick commits thousands of pages, and with
auto-checkpoints every commit also waited for a checkpoint and an fsync of the file.

Threads. Writes go through ONE dedicated thread with its own connection (``BEGIN
IMMEDIATE`` per ``add``, so a second process writing the same file waits on the busy timeout
instead of failing mid-transaction), but for the one write that is cheap and bounded: a batch
of at most :data:`HERE_ROWS` rows the writer knows is news, while the thread has nothing under
way, is appended right on the event loop (``_add_here``: five statements, ~2 ms for 500 rows
at 3,000 pairs), never waiting for another process's write lock (it then goes to the thread).
On the thread each of those statements let go of the GIL and waited to take it back behind
the loop (~5 ms each when the loop is busy): a 500-row batch took 30-50 ms of wall time for 3
ms of work. The writer never copies the WAL into the file (below), so a commit only appends
to it. Reads use a small pool of threads with a read-only connection each, which WAL lets
run beside the writer. The event loop encodes a batch (on the writer thread that Python work
queued for the GIL behind a loop busy with the feed, and took two to five times as long).
A cancelled ``add`` still commits or rolls back whole in the writer thread; retrying it is
harmless because ``add`` is idempotent. An ``add`` is a few statements whatever its size,
each over the whole batch (:mod:`~krakenstream.store.sqlite_writes`: about five for a batch
the writer knows is news, ten to check any other): every statement lets go of the GIL and
takes it back, so a statement per row made the writer thread queue for the GIL behind a
busy event loop thousands of times a batch.

Durability: WAL with ``synchronous=NORMAL``: a crash of the process loses nothing committed,
a power cut may lose the last transactions; a second of market history is worth less than the
fsync per snapshot that ``FULL`` would cost.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ..core.codec import encode
from ..core.snapshot import Snapshot
from ..errors import BackendUnavailable
from ..sqlite_wal import enable_wal, rollback
from . import sqlite_sql as sql
from .base import CHUNK_SIZE, Order, PagedHistory, Row
from .sqlite_writes import SLACK_FROM as SLACK_FROM
from .sqlite_writes import BatchWrites
from .sqlite_writes import slack as slack

log = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA_VERSION = 3
#: how long a write waits for another process's write lock before giving up
BUSY_TIMEOUT_S = 5.0
BUSY_TIMEOUT_MS = int(BUSY_TIMEOUT_S * 1000)
#: the writer connection's page cache, KiB (SQLite's default is 2 MiB, about 500 pages): a
#: move from ``recent`` of thousands of pairs dirties the newest page of each pair's range,
#: and with the default cache the next move read them all back (32 MiB when every tick did)
WRITER_CACHE_KIB = 16_384
#: how often the checkpointer thread copies what the WAL holds into the database file
CHECKPOINT_EVERY_S = 1.0
#: rows ``recent`` holds before they are moved into ``settled``, once the writer is idle (five
#: ticks at 3,000 pairs: each pair's five rows then land on one page or two, instead of each
#: tick dirtying a page a pair)
SETTLE_ROWS = 15_000
#: the writer is idle when no write has started for this long since the last one ended
SETTLE_IDLE_S = 0.05
#: a batch of at most this many rows the writer knows is news is appended on the event loop
#: itself when the writer thread is idle (see the module's notes on threads); a bigger one
#: (a backlog after a stall) goes to the thread, so the loop is never held long
HERE_ROWS = 1_000
#: ``recent`` holding this many times :data:`SETTLE_ROWS` moves right after a write, idle or
#: not (a writer given a batch every moment would otherwise never move it)
SETTLE_FORCE = 4


class SQLiteHistoryStore(PagedHistory):
    """:class:`~krakenstream.store.base.HistoryStore` in one SQLite file (WAL, one writer)."""

    def __init__(
        self,
        path: str | Path,
        *,
        history_limit: int = 10_000,
        readers: int = 2,
        chunk_size: int = CHUNK_SIZE,
        settle_rows: int = SETTLE_ROWS,
    ) -> None:
        if history_limit < 1:
            raise ValueError("history_limit must be at least 1")
        if settle_rows < 1:
            raise ValueError("settle_rows must be at least 1")
        self.path = Path(path).expanduser()
        self.history_limit = history_limit
        self.chunk_size = chunk_size
        self._readers_n = readers
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._wconn: sqlite3.Connection | None = None
        self._rconns: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._checkpointer: _Checkpointer | None = None
        self.settle_rows = settle_rows
        #: rows in ``recent`` (as this store wrote and moved them: another process writing the
        #: same file makes it a guess, which only decides when to move)
        self._recent = 0
        #: the writer thread's batch writes, and what it knows of the pairs it wrote
        self._writes = BatchWrites(history_limit)
        #: jobs given to the writer thread, and jobs it finished (each counter written by one
        #: thread only): while they differ, the writer connection is the thread's
        self._given = 0
        self._finished = 0
        self._settle_timer: asyncio.TimerHandle | None = None
        self._settling: asyncio.Task[int] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._writer is not None:
            return
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="kms-history-writer")
        self._given = self._finished = 0  # (a job refused by a pool shutting down never ran)
        self._readers = ThreadPoolExecutor(self._readers_n, thread_name_prefix="kms-history-read")
        try:
            await self._write(self._open_writer)
        except BaseException:
            await self.close()
            raise
        self._checkpointer = _Checkpointer(self.path, self._connect)
        log.info("history store open: backend=sqlite path=%s cap=%d", self.path,
                 self.history_limit)

    async def close(self) -> None:
        if self._settle_timer is not None:
            self._settle_timer.cancel()
            self._settle_timer = None
        if self._settling is not None:  # (its failure was logged)
            await asyncio.gather(self._settling, return_exceptions=True)
            self._settling = None
        writer, readers = self._writer, self._readers
        self._writer = self._readers = None
        for pool in (writer, readers):
            if pool is not None:
                # the threads finish what they were given; nothing new can be submitted
                await asyncio.get_running_loop().run_in_executor(None, pool.shutdown, True)
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            # (the last connection closed checkpoints what is left and removes the WAL)
            await asyncio.get_running_loop().run_in_executor(None, checkpointer.stop)
        with self._lock:
            conns, self._rconns = self._rconns, []
        if self._wconn is not None:
            conns.append(self._wconn)
            self._wconn = None
        for conn in conns:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        # autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT)
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _open_writer(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = self._connect()
        try:
            mode = enable_wal(conn)
            if str(mode).lower() != "wal":
                raise BackendUnavailable(f"history database {self.path}: WAL mode refused "
                                         f"(journal_mode={mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
            # the checkpointer thread copies the WAL into the file; a commit that did it
            # (every 1,000 pages by default: every commit of a big batch) waited for the
            # copy and the fsync of the database file in the writer's own time
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            for ddl in sql.SCRATCH:
                conn.execute(ddl)
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise BackendUnavailable(
                        f"history database {self.path} has schema {version}, newer than this "
                        f"krakenstream ({SCHEMA_VERSION})",
                        hint="upgrade krakenstream or point store.path elsewhere",
                    )
                if version == 1:  # schema 1 stored JSON in a column named for it
                    conn.execute("ALTER TABLE snapshots RENAME COLUMN json TO data")
                if version in (1, 2):  # the one table of schemas 1 and 2 is settled history
                    conn.execute("ALTER TABLE snapshots RENAME TO settled")
                for ddl in sql.SCHEMA:
                    conn.execute(ddl)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                (self._recent,) = conn.execute("SELECT count(*) FROM recent").fetchone()
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
        except BaseException:
            conn.close()
            raise
        self._wconn = conn

    def _reader(self) -> sqlite3.Connection:
        """This reader thread's connection, made on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = 1")
            self._local.conn = conn
            with self._lock:
                self._rconns.append(conn)
        return conn

    # -- running on the threads ------------------------------------------------------------

    async def _write(self, fn: Callable[..., T], *args: object) -> T:
        if self._writer is not None:
            self._given += 1
        return await self._run(self._writer, self._job, fn, *args)

    def _job(self, fn: Callable[..., T], *args: object) -> T:
        try:
            return fn(*args)
        finally:
            self._finished += 1

    async def _read(self, fn: Callable[..., T], *args: object) -> T:
        return await self._run(self._readers, fn, *args)

    async def _run(self, pool: ThreadPoolExecutor | None, fn: Callable[..., T],
                   *args: object) -> T:
        if pool is None:
            raise BackendUnavailable(f"history database {self.path} is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise self._failed(exc) from exc
        except RuntimeError as exc:  # submitted while close() was shutting the pool down
            if self._writer is None:
                raise BackendUnavailable(f"history database {self.path} is closed") from exc
            raise

    def _failed(self, exc: sqlite3.Error | OSError) -> BackendUnavailable:
        return BackendUnavailable(f"history database {self.path}: {exc}")

    # -- writes ----------------------------------------------------------------------------

    async def add(self, snaps: Sequence[Snapshot]) -> int:
        if not snaps:
            return 0
        if self._settle_timer is not None:  # not idle: a move now would hold this write up
            self._settle_timer.cancel()
            self._settle_timer = None
        # encoded here, on the event loop (see the module's notes on threads)
        rows = [(s.pair, s.ts, encode(s)) for s in snaps]
        here = self._add_here(rows)
        kept = await self._write(self._add, rows) if here is None else here
        if self._recent >= SETTLE_FORCE * self.settle_rows:
            await self.settle()
        elif self._recent >= self.settle_rows and self._settle_timer is None:
            self._settle_timer = asyncio.get_running_loop().call_later(
                SETTLE_IDLE_S, self._settle_when_idle)
        return kept

    async def settle(self) -> int:
        """Move every row of ``recent`` into ``settled`` now (one transaction); returns how
        many. Answers are the same before and after: reads take both tables."""
        return await self._write(self._settle)

    def _settle_when_idle(self) -> None:
        self._settle_timer = None
        if self._settling is not None and not self._settling.done():
            return
        self._settling = asyncio.get_running_loop().create_task(
            self.settle(), name="kms-history-settle")
        self._settling.add_done_callback(_log_settle_failure)

    def _settle(self) -> int:
        conn = self._wconn
        assert conn is not None  # _write refuses to run when the store is not open
        conn.execute("BEGIN IMMEDIATE")
        try:
            moved = conn.execute(sql.SETTLE).rowcount
            conn.execute(sql.CLEAR_RECENT)
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
        self._recent = 0
        if self._checkpointer is not None:
            self._checkpointer.written.set()
        return int(moved)

    def _add_here(self, rows: Sequence[tuple[str, int, bytes]]) -> int | None:
        """``rows`` appended the fast way right here on the event loop, when the writer
        thread has nothing under way and the batch is news (see the module's notes on
        threads); None otherwise, and nothing written."""
        conn = self._wconn
        if (conn is None or self._writer is None or self._given != self._finished
                or len(rows) > HERE_ROWS):
            return None
        try:
            done = self._writes.try_append(conn, rows, BUSY_TIMEOUT_MS)
        except (sqlite3.Error, OSError) as exc:
            raise self._failed(exc) from exc
        return None if done is None else self._written(*done)

    def _add(self, rows: Sequence[tuple[str, int, bytes]]) -> int:
        conn = self._wconn
        assert conn is not None  # _write refuses to run when the store is not open
        return self._written(*self._writes.add(conn, rows))

    def _written(self, kept: int, grown: int) -> int:
        """After a batch committed (on the loop or the thread): ``recent`` has grown, the
        checkpointer has work; answers ``kept``."""
        self._recent += grown
        if self._checkpointer is not None:
            self._checkpointer.written.set()
        return kept

    # -- reads -----------------------------------------------------------------------------

    async def count(self, pair: str) -> int:
        return min(await self._read(self._count, pair), self.history_limit)

    def _count(self, pair: str) -> int:
        row = self._reader().execute(sql.COUNT, (pair,)).fetchone()
        return 0 if row is None else int(row[0])

    async def pairs(self) -> list[str]:
        return await self._read(self._pairs)

    def _pairs(self) -> list[str]:
        cur = self._reader().execute("SELECT pair FROM pair_counts WHERE n > 0 ORDER BY pair")
        return [str(r[0]) for r in cur]

    async def ping(self) -> None:
        await self._read(lambda: self._reader().execute("SELECT 1").fetchone())

    def _floor(self, pair: str) -> int | None:
        """The ts of the cap-th newest snapshot when more than the cap are stored.

        Counted from the oldest end (at most the slack, or the rows a lowered cap hides, to
        walk) in one read transaction, so the count and the rows are the same moment's."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            row = conn.execute(sql.COUNT, (pair,)).fetchone()
            n = 0 if row is None else int(row[0])
            if n <= self.history_limit:
                return None
            row = conn.execute(sql.NTH_OLDEST, (pair, n - self.history_limit)).fetchone()
            return None if row is None else int(row[0])
        finally:
            conn.execute("COMMIT")

    def _fetch_rows(self, pair: str, lo: int, hi: int, n: int, order: Order) -> list[Row]:
        cur = self._reader().execute(sql.RANGE[order], (pair, lo, hi, n))
        return [(int(ts), bytes(js)) for ts, js in cur]

    async def _fetch(self, pair: str, lo: int, hi: int, n: int, order: Order) -> list[Row]:
        return await self._read(self._fetch_rows, pair, lo, hi, n, order)

    async def _floor_ts(self, pair: str) -> int | None:
        return await self._read(self._floor, pair)


def stored_size(path: str | Path) -> tuple[int, int]:
    """The bytes of the history file's pages that hold history (``dbstat``: both tables and
    the index of ``recent``) and the rows they hold: what a stored snapshot costs on disk,
    as ``docs/operations.md`` and the benchmarks give it. Opens the file read-only."""
    conn = sqlite3.connect(f"file:{Path(path).expanduser()}?mode=ro", uri=True)
    try:
        (size,) = conn.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN "
                               "('settled', 'recent', 'recent_key')").fetchone()
        (rows,) = conn.execute("SELECT count(*) FROM snapshots").fetchone()
    finally:
        conn.close()
    return int(size), int(rows)


def _log_settle_failure(task: asyncio.Task[int]) -> None:
    """A move that failed is tried again after a later write; its rows are read where they are."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("history: moving recent rows into settled history failed (%s); tried "
                    "again after the next write", exc)


class _Checkpointer:
    """A thread with its own connection that copies the WAL into the database file (a
    ``PASSIVE`` checkpoint: it never blocks the writer or a reader) once a second after
    writes, so the writer's commits only append to the WAL. A checkpoint that fails (a full
    disk) is logged once and tried again at the next write."""

    def __init__(self, path: Path, connect: Callable[[], sqlite3.Connection]) -> None:
        self.path = path
        self._connect = connect
        #: set by the writer after each commit
        self.written = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kms-history-checkpoint",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        failing = False
        try:
            while not self._stopping.wait(CHECKPOINT_EVERY_S):
                if not self.written.is_set():
                    continue
                self.written.clear()
                try:
                    if conn is None:
                        conn = self._connect()
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:
                    self.written.set()  # still to do
                    if not failing:
                        log.warning("history database %s: checkpoint failed (%s); the WAL "
                                    "grows until one succeeds", self.path, exc)
                    failing = True
                    continue
                if failing:
                    log.info("history database %s: checkpoints succeed again", self.path)
                failing = False
        finally:
            if conn is not None:
                conn.close()
