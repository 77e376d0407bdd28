"""The embedded user store: one SQLite file, driven from asyncio through one worker thread.

sqlite3 blocks, so every call runs on a single dedicated thread that owns the connection: calls
are serialised (no lock to forget, no connection shared between threads) and the event loop
never waits on the disk. WAL mode lets another process (``kms`` commands) read while the daemon
writes; a busy timeout absorbs short write contention between processes.

Decisions that read then write (the first account is admin, the last admin stays) run in a
``BEGIN IMMEDIATE`` transaction: it takes the database's write lock before reading, so another
connection or process deciding the same thing waits for this one to commit, then sees it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from ..errors import BackendUnavailable, Conflict, InputError, NotFound
from ..sqlite_wal import enable_wal, rollback
from .base import MAX_USER_ID, Access, Role, User, normalize_email
from .rules import (
    closed_registration,
    enabled_admin,
    last_admin_conflict,
    plan_rekey,
    temporary_key,
    void_before,
)

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
    # roles and revocation. Existing accounts: the oldest becomes admin (it is the one who set
    # the daemon up; everyone could manage pairs before, and someone must still be able to),
    # the others readers; an admin promotes whoever else should manage.
    (2, (
        "ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'reader'",
        "ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE users ADD COLUMN tokens_valid_after INTEGER NOT NULL DEFAULT 0",
        "UPDATE users SET role = 'admin' WHERE id = (SELECT MIN(id) FROM users)",
        """CREATE TABLE IF NOT EXISTS revoked_tokens (
            jti TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS revoked_tokens_expiry ON revoked_tokens (expires_at)",
    )),
    # email keys under NFKC + case folding (see rules.py); done in Python, below
    (3, ()),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

_USER_COLUMNS = "id, email, created_at, role, disabled"


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

    async def create(
        self, email: str, password_hash: str, *, role: Role | None = None,
        first_only: bool = False,
    ) -> User:
        parsed = normalize_email(email, new=True)
        created = _now()

        def insert(conn: sqlite3.Connection) -> User | None:
            def step() -> User | None:
                empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM users)").fetchone()[0]
                if first_only and not empty:
                    raise closed_registration()
                chosen = role if role is not None else (Role.ADMIN if empty else Role.READER)
                try:
                    cur = conn.execute(
                        "INSERT INTO users (email, email_key, password_hash, created_at, role)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (parsed.address, parsed.key, password_hash, created.isoformat(),
                         chosen.value),
                    )
                except sqlite3.IntegrityError:
                    return None
                assert cur.lastrowid is not None
                return User(id=cur.lastrowid, email=parsed.address, created_at=created,
                            role=chosen)

            return _immediate(conn, step)

        user = await self._run(insert)
        if user is None:
            raise Conflict(f"email {parsed.address} is already registered")
        return user

    async def get_by_email(self, email: str) -> tuple[User, str] | None:
        try:
            key = normalize_email(email).key
        except InputError:
            return None

        def select(conn: sqlite3.Connection) -> tuple[User, str] | None:
            row = conn.execute(
                f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE email_key = ?",
                (key,),
            ).fetchone()
            return None if row is None else (_user(row), row[5])

        return await self._run(select)

    async def get_by_id(self, user_id: int) -> User | None:
        if not 1 <= user_id <= MAX_USER_ID:
            return None
        return await self._run(lambda conn: _get(conn, user_id))

    async def is_empty(self) -> bool:
        return bool(await self._run(
            lambda conn: conn.execute("SELECT NOT EXISTS (SELECT 1 FROM users)").fetchone()[0]
        ))

    async def list_users(self) -> list[User]:
        def select(conn: sqlite3.Connection) -> list[User]:
            rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY id").fetchall()
            return [_user(row) for row in rows]

        return await self._run(select)

    async def _change(
        self, user_id: int, after: Callable[[User], User | None],
        statements: list[tuple[str, tuple[Any, ...]]],
    ) -> User | None:
        """Run ``statements`` in one write transaction, after refusing an unknown id and a
        change that would leave no enabled admin; ``after(user)`` is the account as the
        change leaves it (None: deleted)."""
        if not 1 <= user_id <= MAX_USER_ID:
            raise NotFound(f"no account with id {user_id}")

        def run(conn: sqlite3.Connection) -> User | None:
            def step() -> User | None:
                user = _get(conn, user_id)
                if user is None:
                    raise NotFound(f"no account with id {user_id}")
                result = after(user)
                if enabled_admin(user) and not (result is not None and enabled_admin(result)):
                    others = conn.execute(
                        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0"
                        " AND id <> ?", (user_id,)).fetchone()[0]
                    if not others:
                        raise last_admin_conflict(user.email)
                for sql, args in statements:
                    conn.execute(sql, args)
                return result

            return _immediate(conn, step)

        return await self._run(run)

    async def set_role(self, user_id: int, role: Role) -> User:
        user = await self._change(
            user_id, lambda u: replace(u, role=role),
            [("UPDATE users SET role = ? WHERE id = ?", (role.value, user_id))])
        assert user is not None
        return user

    async def set_disabled(self, user_id: int, disabled: bool) -> User:
        sql = ("UPDATE users SET disabled = 1, tokens_valid_after = ? WHERE id = ?",
               (void_before(), user_id)) if disabled else (
               "UPDATE users SET disabled = 0 WHERE id = ?", (user_id,))
        user = await self._change(user_id, lambda u: replace(u, disabled=disabled), [sql])
        assert user is not None
        return user

    async def delete(self, user_id: int) -> None:
        await self._change(user_id, lambda u: None, [
            ("DELETE FROM users WHERE id = ?", (user_id,)),
            ("DELETE FROM revoked_tokens WHERE user_id = ?", (user_id,)),
        ])

    async def revoke_token(self, jti: str, user_id: int, expires_at: int) -> None:
        now = int(time.time())

        def revoke(conn: sqlite3.Connection) -> None:
            def step() -> None:
                conn.execute("INSERT OR IGNORE INTO revoked_tokens (jti, user_id, expires_at)"
                             " VALUES (?, ?, ?)", (jti, user_id, expires_at))
                # a token past its expiry is refused anyway: its revocation can go
                conn.execute("DELETE FROM revoked_tokens WHERE expires_at < ?", (now,))

            _immediate(conn, step)

        await self._run(revoke)

    async def access(self, user_id: int, jti: str) -> Access | None:
        if not 1 <= user_id <= MAX_USER_ID:
            return None

        def select(conn: sqlite3.Connection) -> Access | None:
            row = conn.execute(
                "SELECT role, disabled, tokens_valid_after,"
                " EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?) FROM users WHERE id = ?",
                (jti, user_id),
            ).fetchone()
            if row is None:
                return None
            return Access(role=Role(row[0]), disabled=bool(row[1]),
                          tokens_valid_after=int(row[2]), token_revoked=bool(row[3]))

        return await self._run(select)

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())


def _immediate(conn: sqlite3.Connection, step: Callable[[], T]) -> T:
    """``step()`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back if it raises)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = step()
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)  # not again if SQLite already did (a full disk): the cause stays
        raise
    return result


def _get(conn: sqlite3.Connection, user_id: int) -> User | None:
    row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()
    return None if row is None else _user(row)


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
            if version == 3:
                _rekey(conn)
            conn.execute(
                "INSERT INTO users_schema (version, applied_at) VALUES (?, ?)",
                (version, _now().isoformat()),
            )
            log.info("users schema upgraded to version %d", version)
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def _rekey(conn: sqlite3.Connection) -> None:
    """Schema 3: every email key under the NFKC + case-folding rule (see rules.py); keys that
    change move through a temporary value first, so the unique index never sees two rows
    swap keys halfway."""
    plan = plan_rekey(conn.execute("SELECT id, email, email_key FROM users").fetchall())
    for change in plan:
        conn.execute("UPDATE users SET email_key = ? WHERE id = ?",
                     (temporary_key(change.user_id), change.user_id))
    for change in plan:
        conn.execute("UPDATE users SET email_key = ? WHERE id = ?",
                     (change.key, change.user_id))
        if change.disable:
            conn.execute("UPDATE users SET disabled = 1, tokens_valid_after = ? WHERE id = ?",
                         (void_before(), change.user_id))
            log.warning("users account id=%d disabled: its email is a look-alike of an older "
                        "account's under the new email rule", change.user_id)


def _now() -> datetime:
    """Now in UTC, to the microsecond both databases keep."""
    return datetime.now(UTC)


def _user(row: tuple[Any, ...]) -> User:
    """A User from the first columns of a row: ``_USER_COLUMNS``."""
    user_id, email, created_at, role, disabled = row[:5]
    created = datetime.fromisoformat(str(created_at))
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return User(id=int(user_id), email=str(email), created_at=created, role=Role(role),
                disabled=bool(disabled))
