"""The user store contract, run against every implementation: SQLite in a temporary folder and
MySQL/MariaDB in a fresh database (integration: skipped locally without MariaDB, failing under
CI=true). Backend-specific behaviour (files, URLs, dropped connections) follows the contract.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import stat
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymysql
import pytest

from conftest import free_port
from krakenstream.config import load_settings
from krakenstream.daemon.wiring import open_user_store
from krakenstream.errors import (
    BackendUnavailable,
    ConfigError,
    Conflict,
    Forbidden,
    InputError,
    NotFound,
)
from krakenstream.users import Access, Role, User, UserStore
from krakenstream.users.mysql import MysqlUserStore, parse_mysql_url
from krakenstream.users.mysql_schema import MIGRATIONS as MYSQL_MIGRATIONS
from krakenstream.users.rules import plan_rekey
from krakenstream.users.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from krakenstream.users.sqlite import SqliteUserStore

HASH = "$2b$04$" + "a" * 53
OTHER_HASH = "$2b$04$" + "b" * 53

StoreFactory = Callable[[], UserStore]

#: valid addresses whose characters mean something in SQL; each must round-trip exactly
INJECTION_EMAILS = [
    "'or'1'='1'--@example.com",
    "admin'--@example.com",
    "x'}or{'1'='1@example.com",
    "%'/*@example.com",
    "robert'+or+1=1#@example.com",
    "_%@example.com",
]
UNICODE_EMAILS = [
    "ünïcødé@exämple.com",
    "用户@例子.广告",
    "θσερ@παράδειγμα.δοκιμή",
    "😀@example.com",
]


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.integration)])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes unopened stores that all share one database (to test several connections)."""
    if request.param == "sqlite":
        path = tmp_path / "data" / "users.sqlite3"
        return lambda: SqliteUserStore(path)
    url: str = request.getfixturevalue("mysql_url")
    return lambda: MysqlUserStore(url)


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[UserStore]:
    s = make_store()
    await s.open()
    try:
        yield s
    finally:
        await s.close()


# -- the contract ---------------------------------------------------------------------------


def test_implementations_satisfy_the_protocol(make_store: StoreFactory) -> None:
    assert isinstance(make_store(), UserStore)


async def test_create_then_get(store: UserStore) -> None:
    before = datetime.now(UTC)
    user = await store.create("Alice@Example.COM", HASH)
    assert isinstance(user, User)
    assert user.id >= 1
    assert user.email == "Alice@example.com"  # domain lower-cased, local part kept for display
    assert user.created_at.tzinfo is not None and user.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= user.created_at <= datetime.now(UTC)

    found = await store.get_by_email("alice@example.com")
    assert found == (user, HASH)
    assert await store.get_by_id(user.id) == user

    second = await store.create("bob@example.com", OTHER_HASH)
    assert second.id != user.id
    assert await store.get_by_email("BOB@example.com") == (second, OTHER_HASH)


async def test_missing_users_are_none(store: UserStore) -> None:
    assert await store.get_by_email("nobody@example.com") is None
    assert await store.get_by_id(1) is None
    assert await store.get_by_id(-5) is None
    assert await store.get_by_id(0) is None
    assert await store.get_by_id(2**63) is None
    assert await store.get_by_id(2**70) is None
    assert await store.get_by_email("not an email") is None


@pytest.mark.parametrize("variant", [
    "ALICE@example.com", "alice@EXAMPLE.com", "  alice@example.com\n", "aLiCe@ExAmPlE.CoM",
])
async def test_email_unique_case_insensitively(store: UserStore, variant: str) -> None:
    await store.create("alice@example.com", HASH)
    with pytest.raises(Conflict, match="already registered"):
        await store.create(variant, OTHER_HASH)
    found = await store.get_by_email(variant)
    assert found is not None and found[1] == HASH


async def test_unicode_case_and_normal_forms_are_one_account(store: UserStore) -> None:
    await store.create("ÜBER@example.com", HASH)
    with pytest.raises(Conflict):
        await store.create("über@example.com", OTHER_HASH)
    # NFD (e + combining acute) and NFC (é) are the same address
    await store.create("caf\u00e9@example.com", HASH)
    with pytest.raises(Conflict):
        await store.create("cafe\u0301@example.com", OTHER_HASH)
    # but accents are not folded away: u and ü are different people
    await store.create("uber@example.com", OTHER_HASH)


@pytest.mark.parametrize("email", INJECTION_EMAILS + UNICODE_EMAILS)
async def test_sql_and_unicode_emails_round_trip_exactly(store: UserStore, email: str) -> None:
    decoy = await store.create("decoy@example.com", OTHER_HASH)
    user = await store.create(email, HASH)
    assert user.email == email
    assert await store.get_by_email(email) == (user, HASH)
    assert await store.get_by_id(user.id) == user
    # the strings did not widen a query: the decoy is still only found by its own address
    assert await store.get_by_email(decoy.email) == (decoy, OTHER_HASH)


async def test_injection_in_lookups_finds_nothing(store: UserStore) -> None:
    await store.create("victim@example.com", HASH)
    for probe in ["' OR '1'='1", "victim@example.com' --", "%@example.com", "'or'1'='1@example.com",
                  "victim@example.com\x00", "*"]:
        assert await store.get_by_email(probe) is None


@pytest.mark.parametrize("bad", [
    "", "   ", "no-at-sign", "a@b", "two@@example.com", '"; DROP TABLE users; --@example.com',
    "x@example.com'; DROP TABLE users; --", "zero\u200bwidth@example.com",
    "a" * 250 + "@example.com",
])
async def test_malformed_emails_are_input_errors(store: UserStore, bad: str) -> None:
    with pytest.raises(InputError, match="email"):
        await store.create(bad, HASH)
    # the table is intact and usable
    assert (await store.create("after@example.com", HASH)).email == "after@example.com"


async def test_concurrent_duplicate_on_one_store(store: UserStore) -> None:
    results = await asyncio.gather(
        store.create("race@example.com", HASH),
        store.create("RACE@example.com", OTHER_HASH),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "User"]


async def test_concurrent_duplicate_on_separate_connections(make_store: StoreFactory) -> None:
    stores = [make_store() for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        results = await asyncio.gather(
            *(s.create("race@example.com", f"$2b$04$race{i}") for i, s in enumerate(stores)),
            return_exceptions=True,
        )
        winners = [r for r in results if isinstance(r, User)]
        losers = [r for r in results if isinstance(r, Conflict)]
        assert len(winners) == 1 and len(losers) == 3, results
        found = await stores[0].get_by_email("race@example.com")
        assert found is not None and found[0] == winners[0]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_open_is_idempotent_and_keeps_data(make_store: StoreFactory) -> None:
    first = make_store()
    await first.open()
    await first.open()  # a second open of the same store is a no-op
    user = await first.create("keep@example.com", HASH)
    await first.close()
    await first.close()  # and so is a second close

    again = make_store()
    await again.open()
    try:
        assert await again.get_by_id(user.id) == user
        with pytest.raises(Conflict):
            await again.create("keep@example.com", HASH)
    finally:
        await again.close()


async def test_two_stores_open_the_same_database_at_once(make_store: StoreFactory) -> None:
    stores = [make_store() for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        user = await stores[0].create("shared@example.com", HASH)
        assert await stores[2].get_by_id(user.id) == user
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_ping(store: UserStore) -> None:
    await store.ping()


async def test_closed_store_is_unavailable(make_store: StoreFactory) -> None:
    s = make_store()
    with pytest.raises(BackendUnavailable, match="not open"):
        await s.get_by_id(1)
    await s.open()
    await s.close()
    with pytest.raises(BackendUnavailable, match="not open"):
        await s.ping()


# -- roles: the first account is admin, the last admin stays ---------------------------------


async def test_first_account_is_admin_later_ones_readers(store: UserStore) -> None:
    assert await store.is_empty()
    first = await store.create("first@example.com", HASH)
    second = await store.create("second@example.com", OTHER_HASH)
    assert (first.role, second.role) == (Role.ADMIN, Role.READER)
    assert not first.disabled and not second.disabled
    assert not await store.is_empty()
    assert await store.get_by_id(first.id) == first
    assert await store.get_by_email("second@example.com") == (second, OTHER_HASH)
    assert await store.list_users() == [first, second]
    named = await store.create("named@example.com", HASH, role=Role.ADMIN)
    assert named.role is Role.ADMIN


async def test_concurrent_first_registrations_make_exactly_one_admin(
    make_store: StoreFactory,
) -> None:
    """Eight connections (processes, for SQLite) register at once into an empty store."""
    stores = [make_store() for _ in range(8)]
    for s in stores:  # one after the other: the schema is created once
        await s.open()
    try:
        users = await asyncio.gather(
            *(s.create(f"racer{i}@example.com", HASH) for i, s in enumerate(stores)))
        assert sorted(u.role.value for u in users) == ["admin"] + ["reader"] * 7
        listed = await stores[0].list_users()
        assert [u.role for u in listed].count(Role.ADMIN) == 1
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_first_only_is_atomic_across_connections(make_store: StoreFactory) -> None:
    """Closed registration: of concurrent first registrations exactly one gets in."""
    stores = [make_store() for _ in range(6)]
    for s in stores:
        await s.open()
    try:
        results = await asyncio.gather(
            *(s.create(f"closed{i}@example.com", HASH, first_only=True)
              for i, s in enumerate(stores)),
            return_exceptions=True)
        winners = [r for r in results if isinstance(r, User)]
        refused = [r for r in results if isinstance(r, Forbidden)]
        assert len(winners) == 1 and len(refused) == 5, results
        assert winners[0].role is Role.ADMIN
        assert "registration is closed" in str(refused[0])
        with pytest.raises(Forbidden):
            await stores[0].create("late@example.com", HASH, first_only=True)
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_role_and_disabled_changes(store: UserStore) -> None:
    admin = await store.create("admin@example.com", HASH)
    reader = await store.create("reader@example.com", OTHER_HASH)
    promoted = await store.set_role(reader.id, Role.ADMIN)
    assert promoted.role is Role.ADMIN and await store.get_by_id(reader.id) == promoted
    demoted = await store.set_role(admin.id, Role.READER)  # another admin remains: allowed
    assert demoted.role is Role.READER
    disabled = await store.set_disabled(admin.id, True)
    assert disabled.disabled and (await store.get_by_id(admin.id)) == disabled
    found = await store.get_by_email("admin@example.com")
    assert found is not None and found[0].disabled
    enabled = await store.set_disabled(admin.id, False)
    assert not enabled.disabled
    await store.delete(admin.id)
    assert await store.get_by_id(admin.id) is None
    assert await store.get_by_email("admin@example.com") is None
    for missing in (admin.id, 0, 2**70):
        with pytest.raises(NotFound):
            await store.set_role(missing, Role.ADMIN)
        with pytest.raises(NotFound):
            await store.set_disabled(missing, True)
        with pytest.raises(NotFound):
            await store.delete(missing)


async def test_the_last_enabled_admin_stays(store: UserStore) -> None:
    admin = await store.create("admin@example.com", HASH)
    reader = await store.create("reader@example.com", OTHER_HASH)
    for change in (lambda: store.set_role(admin.id, Role.READER),
                   lambda: store.set_disabled(admin.id, True),
                   lambda: store.delete(admin.id)):
        with pytest.raises(Conflict, match="last enabled admin") as info:
            await change()
        assert info.value.hint and "promote" in info.value.hint
    assert await store.get_by_id(admin.id) == admin  # untouched
    # a disabled admin does not count as one who can manage
    second = await store.set_role(reader.id, Role.ADMIN)
    await store.set_disabled(second.id, True)
    with pytest.raises(Conflict):
        await store.set_role(admin.id, Role.READER)
    await store.set_disabled(second.id, False)
    await store.set_role(admin.id, Role.READER)
    # no-ops on an admin who stays one are fine
    assert (await store.set_role(second.id, Role.ADMIN)).role is Role.ADMIN


async def test_concurrent_demotions_keep_one_admin(make_store: StoreFactory) -> None:
    """Two admins demote each other at once on two connections: one of them must fail."""
    a, b = make_store(), make_store()
    await a.open()
    await b.open()
    try:
        one = await a.create("one@example.com", HASH)
        two = await a.create("two@example.com", OTHER_HASH, role=Role.ADMIN)
        results = await asyncio.gather(a.set_role(two.id, Role.READER),
                                       b.set_role(one.id, Role.READER),
                                       return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["Conflict", "User"], results
        roles = [u.role for u in await a.list_users()]
        assert roles.count(Role.ADMIN) == 1
    finally:
        await a.close()
        await b.close()


# -- token revocation and the state a token check reads ----------------------------------------


async def test_access_reports_role_state_and_revocation(store: UserStore) -> None:
    assert await store.access(1, "jti-x") is None
    user = await store.create("who@example.com", HASH)
    assert await store.access(user.id, "jti-1") == Access(
        role=Role.ADMIN, disabled=False, tokens_valid_after=0, token_revoked=False)
    future = int(time.time()) + 3600
    await store.revoke_token("jti-1", user.id, future)
    await store.revoke_token("jti-1", user.id, future)  # twice is harmless
    revoked = await store.access(user.id, "jti-1")
    assert revoked is not None and revoked.token_revoked
    other = await store.access(user.id, "jti-2")
    assert other is not None and not other.token_revoked
    reader = await store.create("reader@example.com", HASH)
    before = int(time.time())
    await store.set_disabled(reader.id, True)
    state = await store.access(reader.id, "any")
    assert state is not None and state.disabled and state.role is Role.READER
    assert before < state.tokens_valid_after <= int(time.time()) + 1
    await store.set_disabled(reader.id, False)
    state = await store.access(reader.id, "any")
    assert state is not None and not state.disabled
    assert state.tokens_valid_after > before  # old tokens stay void after re-enabling


async def test_expired_revocations_are_purged(make_store: StoreFactory) -> None:
    store = make_store()
    await store.open()
    try:
        user = await store.create("who@example.com", HASH)
        await store.revoke_token("old", user.id, int(time.time()) - 10)
        await store.revoke_token("new", user.id, int(time.time()) + 3600)  # purges "old"
        assert _revoked_jtis(store) == ["new"]
    finally:
        await store.close()


def _revoked_jtis(store: UserStore) -> list[object]:
    sql = "SELECT jti FROM revoked_tokens ORDER BY jti"
    if isinstance(store, SqliteUserStore):
        return [r[0] for r in _sqlite_rows(store.path, sql)]
    assert isinstance(store, MysqlUserStore)
    return [r[0] for r in _mysql(store.target.database, sql)]


# -- look-alike emails ------------------------------------------------------------------------


@pytest.mark.parametrize("real, look_alike", [
    ("mail@example.com", "\uff4dail@example.com"),  # fullwidth m
    ("file@example.com", "\ufb01le@example.com"),  # the fi ligature
    ("strasse@example.com", "stra\u00dfe@example.com"),  # sharp s folds to ss
    ("ADMIN@example.com", "\uff21\uff24\uff2d\uff29\uff2e@example.com"),  # fullwidth ADMIN
])
async def test_look_alikes_are_one_address(store: UserStore, real: str, look_alike: str) -> None:
    user = await store.create(real, HASH)
    with pytest.raises(Conflict, match="already registered"):
        await store.create(look_alike, OTHER_HASH)
    assert await store.get_by_email(look_alike) == (user, HASH)
    # the other way round too, on a fresh pair of names
    first = await store.create("x" + look_alike, HASH)
    with pytest.raises(Conflict):
        await store.create("x" + real, OTHER_HASH)
    assert first.email == "x" + look_alike  # kept as typed, for display


@pytest.mark.parametrize("mixed", [
    "ma\u0456l@example.com",  # Cyrillic i among Latin letters
    "p\u0430ypal@example.com",  # Cyrillic a
    "\u03bfpen@example.com",  # Greek omicron
])
async def test_mixed_script_local_parts_are_refused(store: UserStore, mixed: str) -> None:
    with pytest.raises(InputError, match="mixes letters of several scripts"):
        await store.create(mixed, HASH)
    assert await store.is_empty()


@pytest.mark.parametrize("single", [
    "\u0456\u0432\u0430\u043d@example.com",  # all Cyrillic: fine
    "\u65e5\u672c\u3072\u3089\u30ab\u30bf@example.com",  # Han + Hiragana + Katakana
    "caf\u00e9.2024+news@example.com",  # Latin with digits and punctuation
])
async def test_one_script_is_welcome(store: UserStore, single: str) -> None:
    assert (await store.create(single, HASH)).email == single


# -- upgrading a database made before roles and the new email rule ----------------------------

#: (email as typed, key as version 1 stored it: lower-cased)
V1_ROWS = [
    ("Owner@example.com", "owner@example.com"),
    ("mail@example.com", "mail@example.com"),
    ("\uff4dail@example.com", "\uff4dail@example.com"),  # a look-alike made later
    ("reader@example.com", "reader@example.com"),
    ("stra\u00dfe@example.com", "stra\u00dfe@example.com"),
    ("STRASSE@example.com", "strasse@example.com"),
]


def _v1_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    for statement in SQLITE_MIGRATIONS[0][1]:
        conn.execute(statement)
    conn.execute("CREATE TABLE users_schema (version INTEGER PRIMARY KEY, applied_at TEXT)")
    conn.execute("INSERT INTO users_schema VALUES (1, 'then')")
    for i, (email, key) in enumerate(V1_ROWS):
        conn.execute("INSERT INTO users (email, email_key, password_hash, created_at)"
                     " VALUES (?, ?, ?, ?)", (email, key, f"{HASH}{i}",
                                              f"2026-01-0{i + 1}T00:00:00+00:00"))
    conn.commit()
    conn.close()


def _v1_mysql(database: str) -> None:
    [statement] = MYSQL_MIGRATIONS[0][1]
    assert isinstance(statement, str)
    _mysql(database, statement)
    _mysql(database, "CREATE TABLE users_schema (version INT PRIMARY KEY,"
                     " applied_at DATETIME(6) NOT NULL)")
    _mysql(database, "INSERT INTO users_schema VALUES (1, UTC_TIMESTAMP(6))")
    for i, (email, key) in enumerate(V1_ROWS):
        _mysql(database, "INSERT INTO users (email, email_key, password_hash, created_at)"
                         " VALUES (%s, %s, %s, UTC_TIMESTAMP(6))", (email, key, f"{HASH}{i}"))


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.integration)])
def v1_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A version-1 database holding V1_ROWS; makes stores over it."""
    if request.param == "sqlite":
        path = tmp_path / "users.sqlite3"
        _v1_sqlite(path)
        return lambda: SqliteUserStore(path)
    url: str = request.getfixturevalue("mysql_url")
    _v1_mysql(parse_mysql_url(url).database)
    return lambda: MysqlUserStore(url)


async def test_upgrade_from_version_1(v1_store: StoreFactory) -> None:
    for _ in range(2):  # the second open finds the work done and changes nothing
        store = v1_store()
        await store.open()
        try:
            users = await store.list_users()
            assert [u.email for u in users] == [email for email, _ in V1_ROWS]
            # the oldest account is the admin; the rest are readers
            assert [u.role for u in users] == [Role.ADMIN] + [Role.READER] * 5
            # the look-alikes made later are disabled and kept; the first of each stays usable
            assert [u.disabled for u in users] == [False, False, True, False, False, True]
            real = await store.get_by_email("mail@example.com")
            assert real is not None and real[0] == users[1]
            assert await store.get_by_email("\uff4dail@example.com") == real
            kept = await store.get_by_email("strasse@example.com")
            assert kept is not None and kept[0] == users[4]
            with pytest.raises(Conflict):
                await store.create("MAIL@example.com", HASH)
            state = await store.access(users[2].id, "x")
            assert state is not None and state.disabled and state.tokens_valid_after > 0
        finally:
            await store.close()


def test_rekey_plan_is_deterministic_and_repeatable() -> None:
    rows = [(i + 1, email, key) for i, (email, key) in enumerate(V1_ROWS)]
    plan = plan_rekey(rows)
    assert {c.user_id: c.disable for c in plan} == {3: True, 5: False, 6: True}
    applied = {c.user_id: c.key for c in plan}
    after = [(uid, email, applied.get(uid, key)) for uid, email, key in rows]
    assert plan_rekey(after) == []
    assert plan_rekey(list(reversed(after))) == []
    assert all(c.key.startswith("#dup") for c in plan if c.disable)


# -- SQLite ---------------------------------------------------------------------------------


def _sqlite_rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_sqlite_file_is_private_wal_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "users.sqlite3"
    for _ in range(2):
        s = SqliteUserStore(path)
        await s.open()
        await s.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _sqlite_rows(path, "PRAGMA journal_mode") == [("wal",)]
    assert [r[0] for r in _sqlite_rows(path, "SELECT version FROM users_schema")] == [1, 2, 3]


async def test_sqlite_full_disk_says_so(tmp_path: Path) -> None:
    """SQLite rolls a transaction back by itself when the disk is full: the store must not
    replace "database or disk is full" with "cannot rollback - no transaction is active"."""
    s = SqliteUserStore(tmp_path / "users.sqlite3")
    await s.open()
    try:
        def cap(conn: sqlite3.Connection) -> None:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")

        await s._run(cap)
        with pytest.raises(BackendUnavailable, match="database or disk is full"):
            for i in range(200):  # a page fills after a few accounts
                await s.create(f"u{i}@example.com", "x" * 60)
        await s.ping()  # and the store still answers
    finally:
        await s.close()


async def test_sqlite_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "users.sqlite3"
    path.write_bytes(b"this is not a database file, just text" * 100)
    s = SqliteUserStore(path)
    with pytest.raises(BackendUnavailable, match=str(path)):
        await s.open()
    # and the failed open left nothing half-open behind
    with pytest.raises(BackendUnavailable, match="not open"):
        await s.ping()


async def test_sqlite_path_that_cannot_exist(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(BackendUnavailable, match="cannot create the user database"):
        await SqliteUserStore(blocker / "users.sqlite3").open()


async def test_sqlite_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.sqlite3"
    s = SqliteUserStore(path)
    await s.open()
    await s.close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO users_schema VALUES (99, 'future')")
    conn.commit()
    conn.close()
    with pytest.raises(BackendUnavailable, match="schema version 99"):
        await SqliteUserStore(path).open()


def test_factory_picks_the_backend(tmp_path: Path) -> None:
    settings = load_settings(env={"KMS_HOME": str(tmp_path)})
    store = open_user_store(settings)
    assert isinstance(store, SqliteUserStore)
    assert store.path == tmp_path / "users.sqlite3"
    custom = load_settings(env={"KMS_HOME": str(tmp_path), "KMS_USERS_PATH": "/x/u.db"})
    assert open_user_store(custom).path == Path("/x/u.db")  # type: ignore[attr-defined]
    mysql = load_settings(env={"KMS_USERS_BACKEND": "mysql",
                               "KMS_MYSQL_URL": "mysql://u:p%40ss@db.local:3307/accounts"})
    store = open_user_store(mysql)
    assert isinstance(store, MysqlUserStore)
    assert store.target.where == "db.local:3307"


# -- MySQL ----------------------------------------------------------------------------------


def test_mysql_url_parsing() -> None:
    t = parse_mysql_url("mysql://kms:p%40ss%3Aword@10.0.0.5:3307/accounts")
    assert (t.host, t.port, t.user, t.password, t.database) == (
        "10.0.0.5", 3307, "kms", "p@ss:word", "accounts")
    d = parse_mysql_url("mysql://localhost")
    assert (d.host, d.port, d.user, d.password, d.database) == (
        "localhost", 3306, "root", "", "krakenstream")
    assert parse_mysql_url("mysql://[::1]:3306/x").where == "[::1]:3306"
    for bad, match in [
        ("postgres://h/db", "expected mysql://"),
        ("mysql://h/db`; DROP DATABASE x; --", "database name"),
        ("mysql://h:notaport/db", "bad port"),
        ("mysql://h/db?ssl=1", "query parameters"),
    ]:
        with pytest.raises(ConfigError, match=match):
            parse_mysql_url(bad)


async def test_mysql_unreachable_port_is_backend_unavailable() -> None:
    port = free_port()  # nothing listens there
    s = MysqlUserStore(f"mysql://root@127.0.0.1:{port}/kms_nowhere")
    with pytest.raises(BackendUnavailable, match=f"127.0.0.1:{port} is unreachable") as info:
        await s.open()
    assert info.value.hint and "mysql.url" in info.value.hint
    with pytest.raises(BackendUnavailable, match="not open"):
        await s.ping()


@pytest.fixture
def mysql_missing_db(mysql_server_url: str) -> Iterator[str]:
    """A URL naming a database that does not exist yet (dropped afterwards)."""
    name = f"kms_test_{uuid.uuid4().hex[:12]}"
    yield f"{mysql_server_url}/{name}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


def _mysql(database: str, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                           database=database, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args or None)
            return list(cur.fetchall())
    finally:
        conn.close()


@pytest.mark.integration
async def test_mysql_creates_missing_database_and_schema_once(mysql_missing_db: str) -> None:
    for _ in range(2):
        s = MysqlUserStore(mysql_missing_db)
        await s.open()
        await s.close()
    db = parse_mysql_url(mysql_missing_db).database
    assert _mysql(db, "SELECT version FROM users_schema ORDER BY version") == [(1,), (2,), (3,)]
    [(_, key_index)] = _mysql(db, "SELECT NON_UNIQUE, INDEX_NAME FROM information_schema.STATISTICS"
                                  " WHERE TABLE_SCHEMA = %s AND COLUMN_NAME = 'email_key'", (db,))
    assert key_index == "users_email_key"
    [(non_unique,)] = _mysql(db, "SELECT NON_UNIQUE FROM information_schema.STATISTICS"
                                 " WHERE TABLE_SCHEMA = %s AND COLUMN_NAME = 'email_key'", (db,))
    assert non_unique == 0


@pytest.mark.integration
async def test_mysql_wrong_password_is_backend_unavailable(mysql_server_url: str) -> None:
    s = MysqlUserStore("mysql://kms_no_such_user:wrong@127.0.0.1:3306/kms_nowhere")
    with pytest.raises(BackendUnavailable, match="refused user 'kms_no_such_user'"):
        await s.open()


def _kill_connections(database: str) -> int:
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                           autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST"
                        " WHERE DB = %s AND ID <> CONNECTION_ID()", (database,))
            ids = [row[0] for row in cur.fetchall()]
            for ident in ids:
                cur.execute(f"KILL {int(ident)}")
        return len(ids)
    finally:
        conn.close()


@pytest.mark.integration
async def test_mysql_reconnects_after_the_connection_is_killed(
    mysql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="krakenstream.users.mysql")
    db = parse_mysql_url(mysql_url).database
    s = MysqlUserStore(mysql_url)
    await s.open()
    try:
        user = await s.create("first@example.com", HASH)
        assert _kill_connections(db) == 1
        assert await s.get_by_id(user.id) == user  # a read after the kill
        assert _kill_connections(db) == 1
        second = await s.create("second@example.com", OTHER_HASH)  # an insert after the kill
        assert "connection lost during an insert" in caplog.text  # the look-first path ran
        assert await s.get_by_email("second@example.com") == (second, OTHER_HASH)
        assert _mysql(db, "SELECT COUNT(*) FROM users") == [(2,)]
        assert _kill_connections(db) == 1
        with pytest.raises(Conflict):
            await s.create("first@example.com", OTHER_HASH)
        assert _kill_connections(db) == 1
        await s.ping()
    finally:
        await s.close()


@pytest.mark.integration
async def test_mysql_insert_recovery_tells_own_row_from_a_rival(mysql_url: str) -> None:
    """After an insert whose answer was lost, a row with our own hash is ours (the insert did
    commit), a row with another hash is a real conflict, and no row means insert again."""
    from krakenstream.users.base import normalize_email
    from krakenstream.users.mysql import _insert_unless_ours

    s = MysqlUserStore(mysql_url)
    await s.open()
    await s.close()
    db = parse_mysql_url(mysql_url).database
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                           database=db, autocommit=True)

    def insert(cur: pymysql.cursors.Cursor) -> User | None:
        cur.execute("INSERT INTO users (email, email_key, password_hash, created_at)"
                    " VALUES (%s, %s, %s, UTC_TIMESTAMP(6))", (email.address, email.key, HASH))
        new_id = int(cur.lastrowid)
        cur.execute("SELECT created_at FROM users WHERE id = %s", (new_id,))
        return User(id=new_id, email=email.address,
                    created_at=cur.fetchone()[0].replace(tzinfo=UTC))

    try:
        email = normalize_email("Lost@example.com")
        with conn.cursor() as cur:
            first = _insert_unless_ours(cur, email, HASH, insert)  # no row yet: inserts
            assert first is not None
            assert _insert_unless_ours(cur, email, HASH, insert) == first  # our row
            assert _insert_unless_ours(cur, email, OTHER_HASH, insert) is None  # a rival's
        assert _mysql(db, "SELECT COUNT(*) FROM users") == [(1,)]
    finally:
        conn.close()


@pytest.mark.integration
async def test_mysql_newer_schema_is_refused(mysql_url: str) -> None:
    s = MysqlUserStore(mysql_url)
    await s.open()
    await s.close()
    db = parse_mysql_url(mysql_url).database
    _mysql(db, "INSERT INTO users_schema VALUES (99, UTC_TIMESTAMP(6))")
    with pytest.raises(BackendUnavailable, match="schema version 99"):
        await MysqlUserStore(mysql_url).open()


@pytest.mark.integration
async def test_mysql_least_privilege_user_on_an_existing_schema(mysql_url: str) -> None:
    """An account with only data rights on a database the DBA prepared can run the store:
    once the schema is current, opening runs no DDL and creates no database."""
    admin = MysqlUserStore(mysql_url)
    await admin.open()  # the schema, as root
    await admin.close()
    db = parse_mysql_url(mysql_url).database
    name, password = f"kms_u_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    _mysql(db, f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s", (password,))
    try:
        _mysql(db, f"GRANT SELECT, INSERT ON `{db}`.* TO '{name}'@'%'")
        s = MysqlUserStore(f"mysql://{name}:{password}@127.0.0.1:3306/{db}")
        await s.open()
        try:
            user = await s.create("limited@example.com", HASH)
            assert await s.get_by_id(user.id) == user
        finally:
            await s.close()
        # and a database it may not create is a clear error, not a crash
        other = MysqlUserStore(f"mysql://{name}:{password}@127.0.0.1:3306/kms_not_allowed")
        with pytest.raises(BackendUnavailable, match="refused user|denied"):
            await other.open()
    finally:
        _mysql(db, f"DROP USER '{name}'@'%'")
