"""The scaled-out user store: MySQL or MariaDB through pymysql, driven from asyncio.

pymysql blocks and its connections are not thread-safe, so one worker thread owns the one
connection and runs every call: the event loop never waits on the network, calls are serialised.

A dropped connection (server restart, idle timeout, ``KILL``) is reopened once per call. Reads
are simply repeated. An insert that was cut off mid-flight may or may not have committed, so
:meth:`MysqlUserStore.create` looks before it inserts again: a row with our own password hash
(bcrypt salts make it unique) is ours, any other row is a genuine conflict.

Decisions that read then write (the first account is admin, the last admin stays) hold a named
lock (``GET_LOCK``) of this database for their few statements: every connection deciding the
same thing, from any process, waits its turn and then sees the committed result. A session
that dies releases its lock with it. Registrations into a store that already has accounts skip
the lock: it cannot become empty again (the last admin cannot be removed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import pymysql
import pymysql.cursors

from ..errors import BackendUnavailable, ConfigError, Conflict, InputError, NotFound
from ..redact import redact_url
from .base import MAX_USER_ID, Access, Email, Role, User, normalize_email
from .mysql_schema import SCHEMA_LOCK_TIMEOUT, SCHEMA_VERSION, upgrade
from .rules import closed_registration, enabled_admin, last_admin_conflict, void_before

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT = 5
#: seconds one query may take to answer / to send before the connection counts as dead
READ_TIMEOUT = 15
WRITE_TIMEOUT = 15

#: server/client error codes that mean "this connection is gone", worth one reconnect
_DISCONNECTED = {
    0,  # pymysql: InterfaceError(0, "") on a connection it already knows is closed
    1053,  # server shutdown in progress
    1927,  # MariaDB: connection was killed
    2006,  # MySQL server has gone away
    2013,  # lost connection during query
    2055,  # lost connection (system error)
    4031,  # disconnected by the server for inactivity
}
_DUPLICATE_ENTRY = 1062
_UNKNOWN_DATABASE = 1049
_ACCESS_DENIED = {1044, 1045}

_DB_NAME = re.compile(r"[A-Za-z0-9_$]{1,64}")



@dataclass(frozen=True, slots=True)
class MysqlTarget:
    """Where to connect, parsed from ``mysql://user:pass@host:port/db``."""

    host: str
    port: int
    user: str
    password: str
    database: str

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_mysql_url(url: str) -> MysqlTarget:
    """Parse ``mysql://user:pass@host:port/db`` (user and password percent-encoded).

    The database name is checked against a plain identifier pattern because it is spliced
    into ``CREATE DATABASE``, where a placeholder cannot go.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mysql+pymysql"):
        raise ConfigError(
            f"mysql.url: expected mysql://user:pass@host:port/db, got {redact_url(url)!r}"
        )
    if parts.query or parts.fragment:
        raise ConfigError("mysql.url: query parameters are not supported")
    try:
        port = parts.port or 3306
    except ValueError:
        raise ConfigError(f"mysql.url: bad port in {redact_url(url)!r}") from None
    database = parts.path.lstrip("/") or "krakenstream"
    if not _DB_NAME.fullmatch(database):
        raise ConfigError(
            f"mysql.url: database name {database!r} must be 1-64 letters, digits, _ or $"
        )
    return MysqlTarget(
        host=parts.hostname or "127.0.0.1",
        port=port,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=database,
    )


class _Disconnected(Exception):
    """Internal: the connection died during a call; the call may be retried."""


class MysqlUserStore:
    """:class:`~krakenstream.users.base.UserStore` over MySQL/MariaDB (creates the database)."""

    def __init__(self, url: str) -> None:
        self.target = parse_mysql_url(url)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: pymysql.connections.Connection[Any] | None = None

    # -- plumbing (everything below runs on the store's thread unless async) ----------------

    def _connect(self) -> pymysql.connections.Connection[Any]:
        t = self.target
        try:
            conn = pymysql.connect(
                host=t.host, port=t.port, user=t.user, password=t.password,
                charset="utf8mb4", autocommit=True,
                connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                write_timeout=WRITE_TIMEOUT,
                # overlong values must fail, never be truncated in silence
                init_command="SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
            )
        except pymysql.err.MySQLError as exc:
            raise self._translate(exc, "cannot connect") from exc
        try:
            try:
                conn.select_db(t.database)
            except pymysql.err.OperationalError as exc:
                if exc.args[0] != _UNKNOWN_DATABASE:
                    raise
                # only now: a user granted rights on an existing database may lack CREATE
                with conn.cursor() as cur:
                    cur.execute(
                        f"CREATE DATABASE IF NOT EXISTS `{t.database}`"
                        " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                    )
                conn.select_db(t.database)
                log.info("users store=mysql created database %s", t.database)
        except pymysql.err.MySQLError as exc:
            conn.close()
            raise self._translate(exc, f"cannot use database {t.database}") from exc
        self._conn = conn
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except pymysql.err.Error:
                pass  # closing a dead socket: nothing left to release

    def _translate(self, exc: pymysql.err.MySQLError, doing: str) -> BackendUnavailable:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        detail = exc.args[1] if len(exc.args) > 1 else str(exc)
        where = self.target.where
        if code == 2003:
            return BackendUnavailable(
                f"MySQL at {where} is unreachable: {detail}",
                hint="is the server running? check mysql.url",
            )
        if code in _ACCESS_DENIED:
            return BackendUnavailable(
                f"MySQL at {where} refused user {self.target.user!r}: {detail}",
                hint="check the user and password in mysql.url",
            )
        return BackendUnavailable(f"MySQL at {where}: {doing}: {detail}")

    def _call(self, fn: Callable[[pymysql.cursors.Cursor], T]) -> T:
        """Run ``fn(cursor)``; a dead connection is dropped and reported as _Disconnected."""
        conn = self._conn or self._connect()
        try:
            with conn.cursor() as cur:
                return fn(cur)
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
            if code in _DISCONNECTED:
                self._drop()
                raise _Disconnected(str(exc)) from exc
            raise self._translate(exc, "query failed") from exc
        except pymysql.err.MySQLError as exc:
            raise self._translate(exc, "query failed") from exc

    async def _submit(self, fn: Callable[[], T]) -> T:
        executor = self._executor
        if executor is None:
            raise BackendUnavailable(f"the MySQL user store ({self.target.where}) is not open")
        return await asyncio.get_running_loop().run_in_executor(executor, fn)

    async def _run(self, fn: Callable[[pymysql.cursors.Cursor], T]) -> T:
        """Run a call that is safe to repeat, reconnecting once if the connection died."""
        try:
            return await self._submit(lambda: self._call(fn))
        except _Disconnected:
            log.warning("users store=mysql at=%s connection lost; reconnecting",
                        self.target.where)
        try:
            return await self._submit(lambda: self._call(fn))
        except _Disconnected as exc:
            raise BackendUnavailable(
                f"MySQL at {self.target.where}: connection lost twice in a row"
            ) from exc

    def _migrate(self) -> None:
        self._call(lambda cur: upgrade(cur, self.target.database, self.target.where))

    # -- UserStore -----------------------------------------------------------------------

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kms-users-mysql")
        try:
            await self._submit(self._migrate)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, _Disconnected):
                raise BackendUnavailable(
                    f"MySQL at {self.target.where}: connection lost while opening"
                ) from exc
            raise
        log.info("users store=mysql at=%s db=%s schema=%d",
                 self.target.where, self.target.database, SCHEMA_VERSION)

    async def close(self) -> None:
        executor = self._executor
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._drop)
        finally:
            self._executor = None
            executor.shutdown(wait=False)

    @contextlib.contextmanager
    def _admin_lock(self, cur: pymysql.cursors.Cursor) -> Iterator[None]:
        """Hold this database's lock of admin decisions (on the store's thread)."""
        lock = f"krakenstream.users.admins.{self.target.database}"
        cur.execute("SELECT GET_LOCK(%s, %s)", (lock, SCHEMA_LOCK_TIMEOUT))
        row = cur.fetchone()
        if not row or row[0] != 1:
            raise BackendUnavailable(
                f"MySQL at {self.target.where}: the accounts lock stayed busy for "
                f"{SCHEMA_LOCK_TIMEOUT} s")
        try:
            yield
        finally:
            with contextlib.suppress(pymysql.err.MySQLError):
                cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))

    async def create(
        self, email: str, password_hash: str, *, role: Role | None = None,
        first_only: bool = False,
    ) -> User:
        parsed = normalize_email(email, new=True)
        created = datetime.now(UTC)

        def add(cur: pymysql.cursors.Cursor, chosen: Role) -> User | None:
            try:
                cur.execute(
                    "INSERT INTO users (email, email_key, password_hash, created_at, role)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (parsed.address, parsed.key, password_hash, _naive_utc(created),
                     chosen.value),
                )
            except pymysql.err.IntegrityError as exc:
                if exc.args and exc.args[0] == _DUPLICATE_ENTRY:
                    return None
                raise
            return User(id=int(cur.lastrowid), email=parsed.address, created_at=created,
                        role=chosen)

        def insert(cur: pymysql.cursors.Cursor) -> User | None:
            if not _empty(cur):  # it stays so: no lock needed
                if first_only:
                    raise closed_registration()
                return add(cur, role or Role.READER)
            with self._admin_lock(cur):
                empty = _empty(cur)
                if first_only and not empty:
                    raise closed_registration()
                return add(cur, role or (Role.ADMIN if empty else Role.READER))

        try:
            user = await self._submit(lambda: self._call(insert))
        except _Disconnected:
            log.warning("users store=mysql at=%s connection lost during an insert; checking",
                        self.target.where)
            user = await self._run(lambda cur: _insert_unless_ours(cur, parsed, password_hash,
                                                                   insert))
        if user is None:
            raise Conflict(f"email {parsed.address} is already registered")
        return user

    async def get_by_email(self, email: str) -> tuple[User, str] | None:
        try:
            key = normalize_email(email).key
        except InputError:
            return None

        def select(cur: pymysql.cursors.Cursor) -> tuple[User, str] | None:
            cur.execute(f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE email_key = %s",
                        (key,))
            row = cur.fetchone()
            return None if row is None else (_user(row), str(row[5]))

        return await self._run(select)

    async def get_by_id(self, user_id: int) -> User | None:
        if not 1 <= user_id <= MAX_USER_ID:
            return None
        return await self._run(lambda cur: _get(cur, user_id))

    async def is_empty(self) -> bool:
        return await self._run(_empty)

    async def list_users(self) -> list[User]:
        def select(cur: pymysql.cursors.Cursor) -> list[User]:
            cur.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY id")
            return [_user(row) for row in cur.fetchall()]

        return await self._run(select)

    async def _change(
        self, user_id: int, after: Callable[[User], User | None],
        statements: list[tuple[str, tuple[Any, ...]]],
    ) -> User | None:
        """Run ``statements`` under the accounts lock, after refusing an unknown id and a
        change that would leave no enabled admin; ``after(user)`` is the account as the
        change leaves it (None: deleted). Repeatable: each change sets, never adds."""
        if not 1 <= user_id <= MAX_USER_ID:
            raise NotFound(f"no account with id {user_id}")

        def run(cur: pymysql.cursors.Cursor) -> User | None:
            with self._admin_lock(cur):
                user = _get(cur, user_id)
                if user is None:
                    raise NotFound(f"no account with id {user_id}")
                result = after(user)
                if enabled_admin(user) and not (result is not None and enabled_admin(result)):
                    cur.execute("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0"
                                " AND id <> %s", (user_id,))
                    row = cur.fetchone()
                    if not row or not row[0]:
                        raise last_admin_conflict(user.email)
                for sql, args in statements:
                    cur.execute(sql, args)
                return result

        return await self._run(run)

    async def set_role(self, user_id: int, role: Role) -> User:
        user = await self._change(
            user_id, lambda u: replace(u, role=role),
            [("UPDATE users SET role = %s WHERE id = %s", (role.value, user_id))])
        assert user is not None
        return user

    async def set_disabled(self, user_id: int, disabled: bool) -> User:
        sql = ("UPDATE users SET disabled = 1, tokens_valid_after = %s WHERE id = %s",
               (void_before(), user_id)) if disabled else (
               "UPDATE users SET disabled = 0 WHERE id = %s", (user_id,))
        user = await self._change(user_id, lambda u: replace(u, disabled=disabled), [sql])
        assert user is not None
        return user

    async def delete(self, user_id: int) -> None:
        await self._change(user_id, lambda u: None, [
            ("DELETE FROM users WHERE id = %s", (user_id,)),
            ("DELETE FROM revoked_tokens WHERE user_id = %s", (user_id,)),
        ])

    async def revoke_token(self, jti: str, user_id: int, expires_at: int) -> None:
        now = int(time.time())

        def revoke(cur: pymysql.cursors.Cursor) -> None:
            cur.execute("INSERT IGNORE INTO revoked_tokens (jti, user_id, expires_at)"
                        " VALUES (%s, %s, %s)", (jti, user_id, expires_at))
            # a token past its expiry is refused anyway: its revocation can go
            cur.execute("DELETE FROM revoked_tokens WHERE expires_at < %s", (now,))

        await self._run(revoke)

    async def access(self, user_id: int, jti: str) -> Access | None:
        if not 1 <= user_id <= MAX_USER_ID:
            return None

        def select(cur: pymysql.cursors.Cursor) -> Access | None:
            cur.execute("SELECT role, disabled, tokens_valid_after,"
                        " EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = %s)"
                        " FROM users WHERE id = %s", (jti, user_id))
            row = cur.fetchone()
            if row is None:
                return None
            return Access(role=Role(row[0]), disabled=bool(row[1]),
                          tokens_valid_after=int(row[2]), token_revoked=bool(row[3]))

        return await self._run(select)

    async def ping(self) -> None:
        def ping(cur: pymysql.cursors.Cursor) -> None:
            cur.execute("SELECT 1")
            cur.fetchone()

        await self._run(ping)


_USER_COLUMNS = "id, email, created_at, role, disabled"


def _empty(cur: pymysql.cursors.Cursor) -> bool:
    cur.execute("SELECT NOT EXISTS (SELECT 1 FROM users)")
    row = cur.fetchone()
    return bool(row and row[0])


def _get(cur: pymysql.cursors.Cursor, user_id: int) -> User | None:
    cur.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (user_id,))
    row = cur.fetchone()
    return None if row is None else _user(row)


def _insert_unless_ours(
    cur: pymysql.cursors.Cursor,
    parsed: Email,
    password_hash: str,
    insert: Callable[[pymysql.cursors.Cursor], User | None],
) -> User | None:
    """After an insert was cut off: if it did commit, return its row; else insert again."""
    cur.execute(f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE email_key = %s",
                (parsed.key,))
    row = cur.fetchone()
    if row is None:
        return insert(cur)
    return _user(row) if row[5] == password_hash else None


def _naive_utc(when: datetime) -> datetime:
    """DATETIME has no zone: we always store UTC and drop the tzinfo at the boundary."""
    return when.astimezone(UTC).replace(tzinfo=None)


def _user(row: tuple[Any, ...]) -> User:
    """A User from the first columns of a row: ``_USER_COLUMNS``."""
    user_id, email, created_at, role, disabled = row[:5]
    if not isinstance(created_at, datetime):  # pragma: no cover - the column is DATETIME(6)
        raise BackendUnavailable(f"users.created_at holds {created_at!r}, not a datetime")
    return User(id=int(user_id), email=str(email), created_at=created_at.replace(tzinfo=UTC),
                role=Role(role), disabled=bool(disabled))
