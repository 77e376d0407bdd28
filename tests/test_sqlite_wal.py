"""``sqlite_wal``: the WAL switch retried while another connection holds the file, and a
rollback that never hides why the transaction failed."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from krakenstream import sqlite_wal
from krakenstream.sqlite_wal import enable_wal, rollback


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)


def test_wal_is_switched_on_and_reported(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "a.sqlite3")
    try:
        assert enable_wal(conn) == "wal"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_a_locked_file_is_retried_until_the_lock_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "b.sqlite3"
    holder, conn = _connect(path), _connect(path)
    retries: list[float] = []

    def sleep(seconds: float) -> None:  # the module's own sleep, counted
        retries.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(sqlite_wal, "time", SimpleNamespace(monotonic=time.monotonic,
                                                            sleep=sleep))
    try:
        holder.execute("BEGIN EXCLUSIVE")  # the switch cannot take its lock meanwhile
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            enable_wal(conn, within=0)  # no time to wait: the lock's error, as it came
        assert retries == []
        result: list[str] = []
        switching = threading.Thread(target=lambda: result.append(enable_wal(conn, within=30)))
        switching.start()
        deadline = time.monotonic() + 10
        while len(retries) < 2:  # refused, and tried again: it is retrying
            assert time.monotonic() < deadline, "enable_wal did not retry"
            time.sleep(0.005)
        holder.execute("COMMIT")
        switching.join(30)
        assert result == ["wal"]
    finally:
        holder.close()
        conn.close()


def test_rollback_of_an_open_transaction(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "c.sqlite3")
    try:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (1)")
        rollback(conn)
        assert not conn.in_transaction
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
        rollback(conn)  # none open (SQLite rolled back by itself, say): nothing to do
    finally:
        conn.close()


def test_a_failing_rollback_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        """A connection whose ROLLBACK fails, as on a file that went away."""

        in_transaction = True

        def execute(self, sql: str) -> None:
            raise sqlite3.OperationalError("disk I/O error")

    with caplog.at_level(logging.WARNING, logger="krakenstream.sqlite_wal"):
        rollback(Broken())  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records] == [
        "SQLite rollback failed too: disk I/O error"]
