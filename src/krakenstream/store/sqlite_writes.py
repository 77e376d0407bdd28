"""The SQLite history store's batch writes (:mod:`krakenstream.store.sqlite`), run by its one
writer thread on its connection: a batch in one transaction, the two ways.

* :meth:`BatchWrites._append`, the normal case, when the writer knows every row is news: each
  pair's rows newer than its newest stored row, as the writer remembers it from its own
  earlier writes, and nobody else has written the file since (``PRAGMA data_version``, which
  changes when another connection commits). There is then no duplicate to look for, nothing
  the cap would drop (but a pair's rows beyond the cap within the batch) and each pair's count
  is known: the rows go straight into ``recent`` and the counts into ``pair_counts``, about
  five statements for a whole tick of 3,000 pairs.
* :meth:`BatchWrites._check` otherwise (a redelivery, a late row, a pair the writer has not
  written yet, another process's writes, a failed transaction): the batch is staged in the
  connection's ``kms_in`` and checked against both tables in SQL, about ten statements; then
  what the fast way needs of the pairs written is learnt.

Statements are few on purpose: each lets go of the GIL and waits to take it back behind an
event loop busy with the feed (~5 ms when it is busy), so the writer's wall time grows with
the statements more than with the rows. At 3,000 pairs the fast way took half the writer's
CPU time of the checked way (``bench/store_tick.py``; see BENCHMARKS.md).
"""

from __future__ import annotations

import functools
import sqlite3
import zlib
from collections.abc import Sequence

from ..sqlite_wal import rollback
from . import sqlite_sql as sql

#: caps from which a pair may hold a few rows beyond the cap before they are deleted
SLACK_FROM = 100


def slack(cap: int, pair: str) -> int:
    """How many rows beyond ``cap`` a pair may hold before the oldest are deleted: 1 to 2 %
    of the cap (none below :data:`SLACK_FROM`), a pair's own figure from a hash of its name
    (``""``: the least). Deleting every pair's oldest row at every tick dirtied as many pages
    again as the inserts; deleting a hundred rows of a pair at once touches one or two, and
    the pairs, which all reach the cap at about the same tick, come due at different ticks.
    Readers never see those rows: the cap applies at query time (``_floor``)."""
    if cap < SLACK_FROM:
        return 0
    least = cap // 100
    return least + (zlib.crc32(pair.encode()) % least if pair else 0)


@functools.cache
def statement(sql_text: str, rows: int, width: int) -> str:
    """``sql_text`` with its VALUES list (``{}``) of ``rows`` rows of ``width`` parameters."""
    one = "(" + ",".join("?" * width) + ")"
    return sql_text.format(",".join([one] * rows))


def execute_rows(conn: sqlite3.Connection, sql_text: str,
                 rows: Sequence[tuple[object, ...]]) -> None:
    """``sql_text`` run over ``rows``, in chunks of the largest of
    :data:`~.sqlite_sql.STATEMENT_ROWS` rows, each padded up to the next size by repeating
    its last row (the statements ignore a repeated row, or set the same value again)."""
    top = sql.STATEMENT_ROWS[-1]
    for i in range(0, len(rows), top):
        part = rows[i:i + top]
        size = next(n for n in sql.STATEMENT_ROWS if n >= len(part))
        width = len(part[0])
        params = [v for row in part for v in row]
        params += params[-width:] * (size - len(part))
        conn.execute(statement(sql_text, size, width), params)


class BatchWrites:
    """Batch writes of one writer connection, and what they know of the pairs they wrote:
    each pair's newest ts and count, valid while ``PRAGMA data_version`` is unchanged (no
    other connection committed) and forgotten at any failure. Not thread-safe: one caller at
    a time, the store's writer thread or (:meth:`try_append`) the event loop while that
    thread has nothing under way."""

    def __init__(self, history_limit: int) -> None:
        self.history_limit = history_limit
        self._newest: dict[str, int] = {}
        self._counts: dict[str, int] = {}
        self._version: int | None = None
        #: batches written the fast way and the checked way (for tests and benchmarks)
        self.appended = 0
        self.checked = 0

    def add(self, conn: sqlite3.Connection,
            rows: Sequence[tuple[str, int, bytes]]) -> tuple[int, int]:
        """``rows`` stored in one transaction of ``conn`` (idempotent: a row already stored
        is not stored again); returns (rows the cap keeps, rows added to ``recent``)."""
        conn.execute("BEGIN IMMEDIATE")
        done = self._in_transaction(conn, rows, check=True)
        assert done is not None  # (checked when not news: never nothing)
        return done

    def try_append(self, conn: sqlite3.Connection, rows: Sequence[tuple[str, int, bytes]],
                   busy_ms: int) -> tuple[int, int] | None:
        """``rows`` stored the fast way (:meth:`_append`) in one transaction, or nothing and
        None: when another connection holds the write lock (no wait for it: ``conn``'s busy
        timeout is 0 for the ``BEGIN`` and ``busy_ms`` again after) or the batch is not news
        as the writer knows it. Then no transaction is left open and :meth:`add` does it."""
        if not self._newest:
            return None  # nothing learnt yet (the first batch, or after a failure)
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # SQLITE_BUSY: another process is writing
            return None
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
        return self._in_transaction(conn, rows, check=False)

    def _in_transaction(self, conn: sqlite3.Connection, rows: Sequence[tuple[str, int, bytes]],
                        *, check: bool) -> tuple[int, int] | None:
        """The batch in the transaction just begun on ``conn``, committed: the fast way when
        it is news, else the checked way, or (``check`` False) nothing, rolled back: None.
        A failure forgets what the writer knew, rolls back and raises."""
        try:
            news = self._news(conn, rows)
            if news is None:
                if not check:
                    rollback(conn)
                    return None
                kept, grown = self._check(conn, rows)
            else:
                kept, grown = self._append(conn, rows, *news)
            conn.execute("COMMIT")
        except BaseException:
            self._forget()
            rollback(conn)
            raise
        if news is None:
            self.checked += 1
        else:
            self.appended += 1
        return kept, grown

    def _forget(self) -> None:
        self._newest.clear()
        self._counts.clear()
        self._version = None

    def _news(self, conn: sqlite3.Connection,
              rows: Sequence[tuple[str, int, bytes]],
              ) -> tuple[dict[str, int], dict[str, int]] | None:
        """How many rows of each pair ``rows`` adds, and the newest of each, when each row is
        newer than its pair's newest (stored or earlier in the batch) as the writer knows
        them; None when it does not know (a pair not seen since the writer knew it,
        another connection's commit since ours: ``PRAGMA data_version``) or a row is not
        news."""
        (version,) = conn.execute(sql.DATA_VERSION).fetchone()
        if version != self._version:
            self._forget()
            self._version = version
            return None
        newest, last = self._newest, dict[str, int]()
        adds: dict[str, int] = {}
        for pair, ts, _ in rows:
            prev = last.get(pair)
            if prev is None:
                prev = newest.get(pair)
                if prev is None:
                    return None
            if ts <= prev:
                return None
            last[pair] = ts
            adds[pair] = adds.get(pair, 0) + 1
        return adds, last

    def _append(self, conn: sqlite3.Connection, rows: Sequence[tuple[str, int, bytes]],
                adds: dict[str, int], last: dict[str, int]) -> tuple[int, int]:
        """Store a batch :meth:`_news` found to be news: no duplicate to look for, nothing
        the cap would not keep but a pair's rows beyond the cap within the batch, each
        pair's count known: the rows and the counts go in a statement per 2,048 (where
        :meth:`_check` stages the batch and checks it against both tables in SQL: twice
        the writer's time, and twice the statements, each a wait for the GIL). Returns
        (kept, rows now in ``recent``)."""
        execute_rows(conn, sql.APPEND, rows)
        counts, cap = self._counts, self.history_limit
        total = [(pair, counts[pair] + n) for pair, n in adds.items()]
        execute_rows(conn, sql.SET_COUNTS, total)
        over = [(pair, n) for pair, n in total if n > cap + slack(cap, pair)]
        gone = self._trim_over(conn, cap, over) if over else 0
        # (committed by the caller; a failure there forgets all of this)
        for pair, n in total:
            counts[pair] = n
        for pair, _ in over:
            counts[pair] = cap
        self._newest.update(last)
        kept = sum(min(n, cap) for n in adds.values())
        return kept, len(rows) - gone

    def _check(self, conn: sqlite3.Connection,
               rows: Sequence[tuple[str, int, bytes]]) -> tuple[int, int]:
        """Store any batch in about ten statements however large, each working on the whole
        batch: the batch into ``kms_in`` (a statement per 2,048 rows), what is stored
        already dropped from it, the rest inserted, each pair's count bumped, the pairs now
        beyond the cap trimmed, all in SQL; then what :meth:`_news` needs of the pairs
        written is learnt. Row by row (an insert per snapshot, a count, a floor, a trim and
        a count per pair) this thread let go of the GIL and waited for it again at every
        statement: with the event loop busy with the feed, 3,000 snapshots a tick took
        seconds to store. Returns (kept, rows now in ``recent``)."""
        # the scratch tables are empty: emptied before every commit, and a rollback takes
        # back what a failed add put in them
        execute_rows(conn, sql.FILL, rows)
        conn.execute(sql.OLD)
        new = conn.execute(sql.INSERT).rowcount
        kept = grown = 0
        if new:
            conn.execute(sql.BUMP)
            cap = self.history_limit
            (dropped,) = conn.execute(sql.NOT_KEPT, (cap,)).fetchone()
            kept = new - dropped
            grown = new - self._trim(conn, cap)
            for pair, n, ts in conn.execute(sql.LEARN).fetchall():
                self._counts[pair] = n
                self._newest[pair] = ts
        conn.execute(sql.CLEAR_IN)
        return kept, grown

    def _trim(self, conn: sqlite3.Connection, cap: int) -> int:
        """Delete, in bulk, the rows beyond the cap of the batch's pairs stored beyond it by
        more than their slack (in the writer's open transaction); returns how many of them
        were in ``recent``."""
        least = cap + slack(cap, "")
        over = [(pair, n) for pair, n in conn.execute(sql.OVER, (least,)).fetchall()
                if n > cap + slack(cap, pair)]
        return self._trim_over(conn, cap, over) if over else 0

    def _trim_over(self, conn: sqlite3.Connection, cap: int,
                   over: list[tuple[str, int]]) -> int:
        """Delete the rows beyond the cap of ``over``'s pairs (each with its count) in bulk;
        returns how many of them were in ``recent``."""
        floors: list[tuple[str, int]] = []
        for pair, n in over:
            # the (n - cap)-th oldest goes, and every row older: exactly cap rows remain
            (floor,) = conn.execute(sql.NTH_OLDEST, (pair, n - cap - 1)).fetchone()
            floors.append((pair, floor))
        execute_rows(conn, sql.FLOOR, floors)
        conn.execute(sql.TRIM)
        gone = int(conn.execute(sql.TRIM_RECENT).rowcount)
        conn.execute(sql.CAPPED, (cap,))
        conn.execute(sql.CLEAR_FLOOR)
        return gone
