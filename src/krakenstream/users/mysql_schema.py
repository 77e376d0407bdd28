"""The MySQL user store's schema: its versions and the steps that bring a database up to date.

Apart from :mod:`.mysql` because the upgrade is long-lived history (every step ever taken
stays, so any old database can be brought forward) while the store's queries follow the
current schema only. Steps are plain SQL or a function of a cursor; each must be idempotent,
because MySQL commits DDL at once and an upgrade cut short is repeated from its last recorded
version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import pymysql
import pymysql.cursors

from ..errors import BackendUnavailable
from .rules import plan_rekey, temporary_key, void_before

log = logging.getLogger("krakenstream.users.mysql")

_NO_SUCH_TABLE = 1146
#: seconds the upgrade waits for another process that is upgrading (below the store's
#: READ_TIMEOUT, or the wait itself would look like a dead connection)
SCHEMA_LOCK_TIMEOUT = 10

Step = str | Callable[[pymysql.cursors.Cursor], None]


def _add_column(name: str, definition: str) -> Callable[[pymysql.cursors.Cursor], None]:
    """A step adding a column unless it is there (MySQL has no ADD COLUMN IF NOT EXISTS)."""

    def step(cur: pymysql.cursors.Cursor) -> None:
        cur.execute("SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
                    " AND TABLE_NAME = 'users' AND COLUMN_NAME = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(f"ALTER TABLE users ADD COLUMN {name} {definition}")

    return step


def _rekey(cur: pymysql.cursors.Cursor) -> None:
    """Schema 3: email keys under NFKC + case folding (see rules.py), through temporary
    keys so the unique index never sees two rows swap keys halfway. Repeatable."""
    cur.execute("SELECT id, email, email_key FROM users")
    plan = plan_rekey((int(r[0]), str(r[1]), str(r[2])) for r in cur.fetchall())
    for change in plan:
        cur.execute("UPDATE users SET email_key = %s WHERE id = %s",
                    (temporary_key(change.user_id), change.user_id))
    for change in plan:
        cur.execute("UPDATE users SET email_key = %s WHERE id = %s", (change.key, change.user_id))
        if change.disable:
            cur.execute("UPDATE users SET disabled = 1, tokens_valid_after = %s WHERE id = %s",
                        (void_before(), change.user_id))
            log.warning("users account id=%d disabled: its email is a look-alike of an older "
                        "account's under the new email rule", change.user_id)


#: (version, steps): steps must be idempotent, because MySQL commits DDL at once and a crash
#: between a step and the version row must be safe to repeat
MIGRATIONS: tuple[tuple[int, tuple[Step, ...]], ...] = (
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
    # roles and revocation; existing accounts: the oldest becomes admin, the rest readers
    # (the same choice as the SQLite store, argued there)
    (2, (
        _add_column("role", "VARCHAR(16) CHARACTER SET ascii NOT NULL DEFAULT 'reader'"),
        _add_column("disabled", "TINYINT(1) NOT NULL DEFAULT 0"),
        _add_column("tokens_valid_after", "BIGINT NOT NULL DEFAULT 0"),
        "UPDATE users SET role = 'admin' ORDER BY id LIMIT 1",
        """CREATE TABLE IF NOT EXISTS revoked_tokens (
            jti VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
            user_id BIGINT UNSIGNED NOT NULL,
            expires_at BIGINT NOT NULL,
            KEY revoked_tokens_expiry (expires_at),
            KEY revoked_tokens_user (user_id)
        ) ENGINE=InnoDB""",
    )),
    (3, (_rekey,)),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _installed(cur: pymysql.cursors.Cursor) -> int:
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


def upgrade(cur: pymysql.cursors.Cursor, database: str, where: str) -> None:
    """Bring the schema up to date (on the store's thread), serialised between processes."""
    # up to date: touch nothing, so a user without DDL rights can run the daemon
    if _installed(cur) == SCHEMA_VERSION:
        return
    # serialise upgrades between processes; released below or when the session ends
    lock = f"krakenstream.users.schema.{database}"
    cur.execute("SELECT GET_LOCK(%s, %s)", (lock, SCHEMA_LOCK_TIMEOUT))
    row = cur.fetchone()
    if not row or row[0] != 1:
        raise BackendUnavailable(
            f"MySQL at {where}: another process holds the schema lock"
        )
    try:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS users_schema ("
            " version INT NOT NULL PRIMARY KEY, applied_at DATETIME(6) NOT NULL"
            ") ENGINE=InnoDB"
        )
        current = _installed(cur)  # again: another process may have just done it
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            for step in statements:
                if isinstance(step, str):
                    cur.execute(step)
                else:
                    step(cur)
            cur.execute(
                "INSERT IGNORE INTO users_schema (version, applied_at) VALUES (%s, %s)",
                (version, datetime.now(UTC).replace(tzinfo=None)),
            )
            log.info("users schema upgraded to version %d", version)
    finally:
        try:
            cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))
        except pymysql.err.MySQLError:
            pass  # the server releases it when this session ends anyway
