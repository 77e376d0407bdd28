"""What the SQLite user and history stores share: turning on the WAL journal, and rolling a
failed transaction back without hiding why it failed.

The WAL switch needs an exclusive lock, and SQLite does not always wait on its busy handler for
it: several processes or connections opening one fresh file at once can get "database is
locked" straight away. So the switch is retried briefly, with a short sleep. Runs on a
store's own thread, never on the event loop.

Some errors (a full disk ``SQLITE_FULL``, ``SQLITE_IOERR``, ``SQLITE_NOMEM``) make SQLite roll the
transaction back by itself; a ``ROLLBACK`` after that fails with "cannot rollback - no
transaction is active", and raised from an ``except`` block it replaces the cause ("database
or disk is full") in every message: :func:`rollback` asks first.
"""

from __future__ import annotations

import logging
import sqlite3
import time

log = logging.getLogger(__name__)


def enable_wal(conn: sqlite3.Connection, *, within: float = 5.0) -> str:
    """Set ``journal_mode=WAL`` and return the mode SQLite reports (``"wal"`` on success)."""
    deadline = time.monotonic() + within
    while True:
        try:
            row = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            return str(row[0]) if row else ""
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already; never raises, so the error
    that made the caller roll back is the one that propagates."""
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:  # the cause is already propagating: say this one beside it
        log.warning("SQLite rollback failed too: %s", exc)
