"""Snapshot history in one SQLite file: the embedded default, with one writer thread.

Layout. ``snapshots(pair, ts, data)`` is a ``WITHOUT ROWID`` table whose primary key
``(pair, ts)`` is also its storage order, so one pair's history is contiguous on disk: a
10,000-row range query reads neighbouring pages instead of rows interleaved with every other
pair's, and trimming deletes from the low end of the same range. ``data`` is the snapshot in
its compact form (:mod:`krakenstream.core.codec`, about 170 bytes at depth 10); rows written
before schema 2 hold the snapshot's JSON and are read as they are (the first byte tells).

Schema 2 only renames schema 1's ``json`` column to ``data`` (a change to the schema, not to
any row: instant on a file of any size, inside the opening transaction); no row is rewritten.
The pair stays the text of its name in the key rather than a small id from a table of pairs:
that costs about six bytes a row (of about 200), and keeps every row of a schema-1 file
where it is, with no migration to run over gigabytes.
``pair_counts(pair, n)`` is kept in the same transaction as every insert and trim, which makes
``count`` and the trim decision O(1) instead of an index walk per write.

Threads. All writes go through ONE dedicated thread with its own connection (``BEGIN
IMMEDIATE`` per ``add``, so a second process writing the same file waits on the busy timeout
instead of failing mid-transaction); reads use a small pool of threads with a read-only
connection each, which WAL lets run beside the writer. The event loop only awaits futures.
A cancelled ``add`` still commits or rolls back whole in the writer thread; retrying it is
harmless because ``add`` is idempotent. An ``add`` is about ten statements whatever its size,
each over the whole batch (staged in a TEMP table of the writer's connection): every
statement lets go of the GIL and takes it back, so a statement per row made the writer
thread queue for the GIL behind a busy event loop thousands of times a batch.

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
from .base import CHUNK_SIZE, Order, PagedHistory, Row

log = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA_VERSION = 2
#: how long a write waits for another process's write lock before giving up
BUSY_TIMEOUT_S = 5.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS snapshots (
        pair TEXT NOT NULL,
        ts INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (pair, ts)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS pair_counts (
        pair TEXT PRIMARY KEY,
        n INTEGER NOT NULL
    ) WITHOUT ROWID""",
)
#: the writer connection's own scratch tables (TEMP: per connection, never in the file): a
#: batch goes into ``kms_in`` in a few statements, and every step after works on all of it
#: at once (see ``_add``)
_SCRATCH = (
    "PRAGMA temp_store = MEMORY",
    "CREATE TEMP TABLE IF NOT EXISTS kms_in (pair TEXT NOT NULL, ts INTEGER NOT NULL, "
    "data BLOB NOT NULL, PRIMARY KEY (pair, ts)) WITHOUT ROWID",
    "CREATE TEMP TABLE IF NOT EXISTS kms_floor (pair TEXT PRIMARY KEY, floor INTEGER) "
    "WITHOUT ROWID",
)
#: rows per statement filling ``kms_in`` (three parameters each; SQLite allows 32,766)
_ROWS_PER_STATEMENT = 2_000
_CLEAR = ("DELETE FROM temp.kms_in", "DELETE FROM temp.kms_floor")
# the first of a (pair, ts) wins within a batch, as row by row INSERT OR IGNORE did
_FILL = "INSERT OR IGNORE INTO temp.kms_in (pair, ts, data) VALUES "
#: what is stored already is no news: dropped from the batch (a redelivery)
_OLD = ("DELETE FROM temp.kms_in WHERE EXISTS (SELECT 1 FROM main.snapshots s "
        "WHERE s.pair = kms_in.pair AND s.ts = kms_in.ts)")
_INSERT = "INSERT INTO main.snapshots (pair, ts, data) SELECT pair, ts, data FROM temp.kms_in"
# ("WHERE true": SQLite's upsert after a SELECT needs it to tell ON CONFLICT from a join's ON)
_BUMP = ("INSERT INTO main.pair_counts (pair, n) SELECT pair, count(*) FROM temp.kms_in "
         "WHERE true GROUP BY pair ON CONFLICT (pair) DO UPDATE SET n = n + excluded.n")
#: each pair now one above the cap, with its floor (its oldest row: one to trim), in bulk;
#: the steady state (a pair at the cap gets one more snapshot a batch)
_FLOORS_ONE = ("INSERT INTO temp.kms_floor (pair, floor) SELECT c.pair, (SELECT min(s.ts) "
               "FROM main.snapshots s WHERE s.pair = c.pair) FROM main.pair_counts c "
               "WHERE c.n = ?1 + 1 AND c.pair IN (SELECT pair FROM temp.kms_in)")
#: pairs further above the cap (a batch of many rows a pair): their floors one by one
_OVER_MORE = ("SELECT c.pair, c.n FROM main.pair_counts c WHERE c.n > ?1 + 1 "
              "AND c.pair IN (SELECT pair FROM temp.kms_in)")
_NTH_OLDEST = "SELECT ts FROM main.snapshots WHERE pair = ? ORDER BY ts ASC LIMIT 1 OFFSET ?"
_FLOOR = "INSERT INTO temp.kms_floor (pair, floor) VALUES (?, ?)"
_NTH_NEWEST = "SELECT ts FROM snapshots WHERE pair = ? ORDER BY ts DESC LIMIT 1 OFFSET ?"
#: rows of this batch that the cap trims at once (older than the kept window): not "kept"
_TRIMMED_NEW = ("SELECT count(*) FROM temp.kms_in i JOIN temp.kms_floor f ON f.pair = i.pair "
                "WHERE i.ts <= f.floor")
_TRIM = ("DELETE FROM main.snapshots WHERE (pair, ts) IN (SELECT s.pair, s.ts FROM "
         "temp.kms_floor f JOIN main.snapshots s ON s.pair = f.pair AND s.ts <= f.floor)")
_CAPPED = "UPDATE main.pair_counts SET n = ? WHERE pair IN (SELECT pair FROM temp.kms_floor)"
_SET_COUNT = "UPDATE pair_counts SET n = ? WHERE pair = ?"
_COUNT = "SELECT n FROM pair_counts WHERE pair = ?"
_RANGE = {
    "desc": "SELECT ts, data FROM snapshots WHERE pair = ? AND ts BETWEEN ? AND ? "
    "ORDER BY ts DESC LIMIT ?",
    "asc": "SELECT ts, data FROM snapshots WHERE pair = ? AND ts BETWEEN ? AND ? "
    "ORDER BY ts ASC LIMIT ?",
}


class SQLiteHistoryStore(PagedHistory):
    """:class:`~krakenstream.store.base.HistoryStore` in one SQLite file (WAL, one writer)."""

    def __init__(
        self,
        path: str | Path,
        *,
        history_limit: int = 10_000,
        readers: int = 2,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        if history_limit < 1:
            raise ValueError("history_limit must be at least 1")
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

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._writer is not None:
            return
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="kms-history-writer")
        self._readers = ThreadPoolExecutor(self._readers_n, thread_name_prefix="kms-history-read")
        try:
            await self._write(self._open_writer)
        except BaseException:
            await self.close()
            raise
        log.info("history store open: backend=sqlite path=%s cap=%d", self.path,
                 self.history_limit)

    async def close(self) -> None:
        writer, readers = self._writer, self._readers
        self._writer = self._readers = None
        for pool in (writer, readers):
            if pool is not None:
                # the threads finish what they were given; nothing new can be submitted
                await asyncio.get_running_loop().run_in_executor(None, pool.shutdown, True)
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
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
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
            for ddl in _SCRATCH:
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
                for ddl in _SCHEMA:
                    conn.execute(ddl)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
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
        return await self._run(self._writer, fn, *args)

    async def _read(self, fn: Callable[..., T], *args: object) -> T:
        return await self._run(self._readers, fn, *args)

    async def _run(self, pool: ThreadPoolExecutor | None, fn: Callable[..., T],
                   *args: object) -> T:
        if pool is None:
            raise BackendUnavailable(f"history database {self.path} is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise BackendUnavailable(f"history database {self.path}: {exc}") from exc
        except RuntimeError as exc:  # submitted while close() was shutting the pool down
            if self._writer is None:
                raise BackendUnavailable(f"history database {self.path} is closed") from exc
            raise

    # -- writes ----------------------------------------------------------------------------

    async def add(self, snaps: Sequence[Snapshot]) -> int:
        if not snaps:
            return 0
        return await self._write(self._add, snaps)

    def _add(self, snaps: Sequence[Snapshot]) -> int:
        """One transaction of about ten statements however large the batch, each working on
        the whole batch: the batch into ``kms_in`` (a statement per 2,000 rows), what is
        stored already dropped from it, the rest inserted, each pair's count bumped, and the
        pairs now beyond the cap trimmed, all in SQL. Row by row (an insert per snapshot, a
        count, a floor, a trim and a count per pair) this thread let go of the GIL and waited
        for it again at every statement: with the event loop busy with the feed, 3,000
        snapshots a tick took seconds to store."""
        # encode before the transaction: the write lock is held for SQL only
        rows = [(s.pair, s.ts, encode(s)) for s in snaps]
        conn = self._wconn
        assert conn is not None  # _write refuses to run when the store is not open
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql in _CLEAR:
                conn.execute(sql)
            for i in range(0, len(rows), _ROWS_PER_STATEMENT):
                part = rows[i:i + _ROWS_PER_STATEMENT]
                conn.execute(_FILL + ",".join(["(?,?,?)"] * len(part)),
                             [v for row in part for v in row])
            conn.execute(_OLD)
            new = conn.execute(_INSERT).rowcount
            kept = 0
            if new:
                conn.execute(_BUMP)
                cap = self.history_limit
                floors = conn.execute(_FLOORS_ONE, (cap,)).rowcount
                for pair, n in conn.execute(_OVER_MORE, (cap,)).fetchall():
                    (floor,) = conn.execute(_NTH_OLDEST, (pair, n - cap - 1)).fetchone()
                    conn.execute(_FLOOR, (pair, floor))
                    floors += 1
                if floors:
                    (trimmed,) = conn.execute(_TRIMMED_NEW).fetchone()
                    conn.execute(_TRIM)
                    conn.execute(_CAPPED, (cap,))
                    new -= trimmed
                kept = new
            for sql in _CLEAR:
                conn.execute(sql)
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
        return kept

    # -- reads -----------------------------------------------------------------------------

    async def count(self, pair: str) -> int:
        return min(await self._read(self._count, pair), self.history_limit)

    def _count(self, pair: str) -> int:
        row = self._reader().execute(_COUNT, (pair,)).fetchone()
        return 0 if row is None else int(row[0])

    async def pairs(self) -> list[str]:
        return await self._read(self._pairs)

    def _pairs(self) -> list[str]:
        cur = self._reader().execute("SELECT pair FROM pair_counts WHERE n > 0 ORDER BY pair")
        return [str(r[0]) for r in cur]

    async def ping(self) -> None:
        await self._read(lambda: self._reader().execute("SELECT 1").fetchone())

    def _floor(self, pair: str) -> int | None:
        """The ts of the cap-th newest snapshot when more than the cap are stored."""
        if self._count(pair) <= self.history_limit:
            return None
        row = self._reader().execute(_NTH_NEWEST, (pair, self.history_limit - 1)).fetchone()
        return None if row is None else int(row[0])

    def _fetch_rows(self, pair: str, lo: int, hi: int, n: int, order: Order) -> list[Row]:
        cur = self._reader().execute(_RANGE[order], (pair, lo, hi, n))
        return [(int(ts), bytes(js)) for ts, js in cur]

    async def _fetch(self, pair: str, lo: int, hi: int, n: int, order: Order) -> list[Row]:
        return await self._read(self._fetch_rows, pair, lo, hi, n, order)

    async def _floor_ts(self, pair: str) -> int | None:
        return await self._read(self._floor, pair)
