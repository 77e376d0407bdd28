"""The embedded user store: one SQLite file, driven from asyncio through one worker thread.

sqlite3 blocks, so every call runs on a single dedicated thread that owns the connection: calls
are serialised (no lock to forget, no connection shared between threads) and the event loop
never waits on the disk. WAL mode lets another process (``kms`` commands) read while the daemon
writes; a busy timeout absorbs short write contention between processes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from ..errors import BackendUnavailable, Conflict, InputError
from ..sqlite_wal import enable_wal
from .base import MAX_USER_ID, User, normalize_email

log = logging.getLogger(__name__)

T = TypeVar("T")

#: seconds a write waits for another process's lock before giving up
BUSY_TIMEOUT = 5.0

#: (version, statements) applied in order, each version once, in one transaction
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, (
        """CREATE TABLE IF NOT EXISTS users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            email TEXT NOT NULL,
            email_key TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON users (email_key)",
    )),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


class SqliteUserStore:
    """:class:`~krakenstream.users.base.UserStore` over a SQLite file (created 0600)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    # -- plumbing ------------------------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the store's thread; sqlite3 errors become ours."""
        executor = self._executor
        if executor is None:
            raise BackendUnavailable(f"the SQLite user store {self.path} is not open")

        def call() -> T:
            if self._conn is None:
                raise BackendUnavailable(f"the SQLite user store {self.path} is not open")
            return fn(self._conn)

        try:
            return await asyncio.get_running_loop().run_in_executor(executor, call)
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"user database {self.path}: {exc}") from exc

    def _connect(self) -> None:
        """On the store's thread: create the file 0600 (it holds password hashes), open it,
        and bring the schema up to date."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot create the user database {self.path}: {exc.strerror}"
            ) from exc
        os.close(fd)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            enable_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    # -- UserStore -----------------------------------------------------------------------

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kms-users-sqlite")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._connect)
        except BaseException as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            if isinstance(exc, sqlite3.Error):
                raise BackendUnavailable(
                    f"cannot open the user database {self.path}: {exc}"
                ) from exc
            raise
        log.info("users store=sqlite path=%s schema=%d", self.path, SCHEMA_VERSION)

    async def close(self) -> None:
        executor = self._executor
        if executor is None:
            return

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        try:
            await asyncio.get_running_loop().run_in_executor(executor, shut)
        finally:
            self._executor = None
            executor.shutdown(wait=False)

    async def create(self, email: str, password_hash: str) -> User:
        parsed = normalize_email(email)
        created = _now()

        def insert(conn: sqlite3.Connection) -> int | None:
            try:
                cur = conn.execute(
                    "INSERT INTO users (email, email_key, password_hash, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (parsed.address, parsed.key, password_hash, created.isoformat()),
                )
            except sqlite3.IntegrityError:
                return None
            return cur.lastrowid

        user_id = await self._run(insert)
        if user_id is None:
            raise Conflict(f"email {parsed.address} is already registered")
        return User(id=user_id, email=parsed.address, created_at=created)

    async def get_by_email(self, email: str) -> tuple[User, str] | None:
        try:
            key = normalize_email(email).key
        except InputError:
            return None

        def select(conn: sqlite3.Connection) -> tuple[int, str, str, str] | None:
            row = conn.execute(
                "SELECT id, email, created_at, password_hash FROM users WHERE email_key = ?",
                (key,),
            ).fetchone()
            return None if row is None else (row[0], row[1], row[2], row[3])

        row = await self._run(select)
        if row is None:
            return None
        return _user(row[0], row[1], row[2]), row[3]

    async def get_by_id(self, user_id: int) -> User | None:
        if not 1 <= user_id <= MAX_USER_ID:
            return None

        def select(conn: sqlite3.Connection) -> tuple[int, str, str] | None:
            row = conn.execute(
                "SELECT id, email, created_at FROM users WHERE id = ?", (user_id,)
            ).fetchone()
            return None if row is None else (row[0], row[1], row[2])

        row = await self._run(select)
        return None if row is None else _user(*row)

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the missing migrations in one write transaction: DDL is transactional in SQLite,
    and ``BEGIN IMMEDIATE`` makes a second process starting at the same time wait, then find
    the work done."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS users_schema ("
            " version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM users_schema").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise BackendUnavailable(
                f"the user database has schema version {current}, newer than this "
                f"krakenstream ({SCHEMA_VERSION}); upgrade krakenstream"
            )
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO users_schema (version, applied_at) VALUES (?, ?)",
                (version, _now().isoformat()),
            )
            log.info("users schema upgraded to version %d", version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _now() -> datetime:
    """Now in UTC, to the microsecond both databases keep."""
    return datetime.now(UTC)


def _user(user_id: int, email: str, created_at: str) -> User:
    created = datetime.fromisoformat(created_at)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return User(id=user_id, email=email, created_at=created)
