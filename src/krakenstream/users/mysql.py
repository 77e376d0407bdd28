"""The scaled-out user store: MySQL or MariaDB through pymysql, driven from asyncio.

pymysql blocks and its connections are not thread-safe, so one worker thread owns the one
connection and runs every call: the event loop never waits on the network, calls are serialised.

A dropped connection (server restart, idle timeout, ``KILL``) is reopened once per call. Reads
are simply repeated. An insert that was cut off mid-flight may or may not have committed, so
:meth:`MysqlUserStore.create` looks before it inserts again: a row with our own password hash
(bcrypt salts make it unique) is ours, any other row is a genuine conflict.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import pymysql
import pymysql.cursors

from ..errors import BackendUnavailable, ConfigError, Conflict, InputError
from ..redact import redact_url
from .base import MAX_USER_ID, Email, User, normalize_email

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT = 5
#: seconds one query may take to answer / to send before the connection counts as dead
READ_TIMEOUT = 15
WRITE_TIMEOUT = 15
#: seconds ``open()`` waits for another process that is upgrading the schema (below
#: READ_TIMEOUT, or the wait itself would look like a dead connection)
SCHEMA_LOCK_TIMEOUT = 10

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
_NO_SUCH_TABLE = 1146
_ACCESS_DENIED = {1044, 1045}

_DB_NAME = re.compile(r"[A-Za-z0-9_$]{1,64}")

#: (version, statements): statements must be idempotent, because MySQL commits DDL at once
#: and a crash between a statement and the version row must be safe to repeat
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, (
        """CREATE TABLE IF NOT EXISTS users (
            id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
            email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
            email_key VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
            password_hash VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
            created_at DATETIME(6) NOT NULL,
            UNIQUE KEY users_email_key (email_key)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
    )),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


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
        def installed(cur: pymysql.cursors.Cursor) -> int:
            try:
                cur.execute("SELECT COALESCE(MAX(version), 0) FROM users_schema")
            except pymysql.err.ProgrammingError as exc:
                if exc.args[0] == _NO_SUCH_TABLE:
                    return 0
                raise
            row = cur.fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise BackendUnavailable(
                    f"the user database has schema version {current}, newer than this "
                    f"krakenstream ({SCHEMA_VERSION}); upgrade krakenstream"
                )
            return current

        def migrate(cur: pymysql.cursors.Cursor) -> None:
            # up to date: touch nothing, so a user without DDL rights can run the daemon
            if installed(cur) == SCHEMA_VERSION:
                return
            # serialise upgrades between processes; released below or when the session ends
            lock = f"krakenstream.users.schema.{self.target.database}"
            cur.execute("SELECT GET_LOCK(%s, %s)", (lock, SCHEMA_LOCK_TIMEOUT))
            row = cur.fetchone()
            if not row or row[0] != 1:
                raise BackendUnavailable(
                    f"MySQL at {self.target.where}: another process holds the schema lock"
                )
            try:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS users_schema ("
                    " version INT NOT NULL PRIMARY KEY, applied_at DATETIME(6) NOT NULL"
                    ") ENGINE=InnoDB"
                )
                current = installed(cur)  # again: another process may have just done it
                for version, statements in MIGRATIONS:
                    if version <= current:
                        continue
                    for statement in statements:
                        cur.execute(statement)
                    cur.execute(
                        "INSERT IGNORE INTO users_schema (version, applied_at) VALUES (%s, %s)",
                        (version, _naive_utc(datetime.now(UTC))),
                    )
                    log.info("users schema upgraded to version %d", version)
            finally:
                try:
                    cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))
                except pymysql.err.MySQLError:
                    pass  # the server releases it when this session ends anyway

        self._call(migrate)

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

    async def create(self, email: str, password_hash: str) -> User:
        parsed = normalize_email(email)
        created = datetime.now(UTC)

        def insert(cur: pymysql.cursors.Cursor) -> int | None:
            try:
                cur.execute(
                    "INSERT INTO users (email, email_key, password_hash, created_at)"
                    " VALUES (%s, %s, %s, %s)",
                    (parsed.address, parsed.key, password_hash, _naive_utc(created)),
                )
            except pymysql.err.IntegrityError as exc:
                if exc.args and exc.args[0] == _DUPLICATE_ENTRY:
                    return None
                raise
            return int(cur.lastrowid)

        try:
            user_id = await self._submit(lambda: self._call(insert))
        except _Disconnected:
            log.warning("users store=mysql at=%s connection lost during an insert; checking",
                        self.target.where)
            user_id = await self._run(lambda cur: _insert_unless_ours(cur, parsed, password_hash,
                                                                      insert))
        if user_id is None:
            raise Conflict(f"email {parsed.address} is already registered")
        return User(id=user_id, email=parsed.address, created_at=created)

    async def get_by_email(self, email: str) -> tuple[User, str] | None:
        try:
            key = normalize_email(email).key
        except InputError:
            return None

        def select(cur: pymysql.cursors.Cursor) -> tuple[Any, ...] | None:
            cur.execute(
                "SELECT id, email, created_at, password_hash FROM users WHERE email_key = %s",
                (key,),
            )
            row: tuple[Any, ...] | None = cur.fetchone()
            return row

        row = await self._run(select)
        if row is None:
            return None
        return _user(row[0], row[1], row[2]), str(row[3])

    async def get_by_id(self, user_id: int) -> User | None:
        if not 1 <= user_id <= MAX_USER_ID:
            return None

        def select(cur: pymysql.cursors.Cursor) -> tuple[Any, ...] | None:
            cur.execute("SELECT id, email, created_at FROM users WHERE id = %s", (user_id,))
            row: tuple[Any, ...] | None = cur.fetchone()
            return row

        row = await self._run(select)
        return None if row is None else _user(row[0], row[1], row[2])

    async def ping(self) -> None:
        def ping(cur: pymysql.cursors.Cursor) -> None:
            cur.execute("SELECT 1")
            cur.fetchone()

        await self._run(ping)


def _insert_unless_ours(
    cur: pymysql.cursors.Cursor,
    parsed: Email,
    password_hash: str,
    insert: Callable[[pymysql.cursors.Cursor], int | None],
) -> int | None:
    """After an insert was cut off: if it did commit, return its id; else insert again."""
    cur.execute("SELECT id, password_hash FROM users WHERE email_key = %s", (parsed.key,))
    row = cur.fetchone()
    if row is None:
        return insert(cur)
    return int(row[0]) if row[1] == password_hash else None


def _naive_utc(when: datetime) -> datetime:
    """DATETIME has no zone: we always store UTC and drop the tzinfo at the boundary."""
    return when.astimezone(UTC).replace(tzinfo=None)


def _user(user_id: Any, email: Any, created_at: Any) -> User:
    if not isinstance(created_at, datetime):  # pragma: no cover - the column is DATETIME(6)
        raise BackendUnavailable(f"users.created_at holds {created_at!r}, not a datetime")
    return User(id=int(user_id), email=str(email), created_at=created_at.replace(tzinfo=UTC))
