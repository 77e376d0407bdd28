"""Turning on SQLite's WAL journal, shared by the SQLite user and history stores.

The switch needs an exclusive lock, and SQLite does not always wait on its busy handler for
it: several processes or connections opening one fresh file at once can get "database is
locked" straight away. So the switch is retried briefly, with a short sleep. Runs on a
store's own thread, never on the event loop.
"""

from __future__ import annotations

import sqlite3
import time


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
