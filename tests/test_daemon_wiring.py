"""``daemon/wiring.py``: the one place settings become backends: which backend each setting
names, where their files go by default, and an auth service ready to use."""

from __future__ import annotations

from pathlib import Path

import pytest

from krakenstream.bus.memory import MemoryBus
from krakenstream.config import Settings, load_settings
from krakenstream.daemon import wiring
from krakenstream.store.redis import RedisHistoryStore
from krakenstream.store.sqlite import SQLiteHistoryStore
from krakenstream.users.sqlite import SqliteUserStore


def settings(home: Path, **env: str) -> Settings:
    return load_settings(env={"KMS_HOME": str(home), **env})


def test_the_embedded_defaults_live_in_the_data_dir(tmp_path: Path) -> None:
    s = settings(tmp_path, KMS_BUS_QUEUE_SIZE="77", KMS_STORE_HISTORY_LIMIT="1234")
    bus = wiring.make_bus(s)
    assert isinstance(bus, MemoryBus) and bus.queue_size == 77
    store = wiring.open_store(s)
    assert isinstance(store, SQLiteHistoryStore)
    assert store.path == tmp_path / "history.sqlite3" and store.history_limit == 1234
    assert wiring.archive_path(s) == tmp_path / "archive"
    users = wiring.open_user_store(s)
    assert isinstance(users, SqliteUserStore) and users.path == tmp_path / "users.sqlite3"


def test_paths_set_are_taken_with_their_tilde(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    s = settings(tmp_path, KMS_STORE_PATH="~/h.sqlite3", KMS_ARCHIVE_PATH="~/arch",
                 KMS_USERS_PATH="~/u.sqlite3")
    assert wiring.sqlite_path(s) == tmp_path / "me" / "h.sqlite3"
    assert wiring.archive_path(s) == tmp_path / "me" / "arch"
    users = wiring.open_user_store(s)
    assert isinstance(users, SqliteUserStore) and users.path == tmp_path / "me" / "u.sqlite3"


def test_the_backends_the_settings_name(tmp_path: Path) -> None:
    s = settings(tmp_path, KMS_STORE_BACKEND="redis", KMS_REDIS_URL="redis://127.0.0.1:1/0",
                 KMS_REDIS_PREFIX="kms-x")
    store = wiring.open_store(s)  # built, not opened: nothing is asked of Redis yet
    assert isinstance(store, RedisHistoryStore)
    assert (store.url, store.prefix) == ("redis://127.0.0.1:1/0", "kms-x")
    off = settings(tmp_path, KMS_ARCHIVE_ENABLED="false")
    assert wiring.open_archive(off) is None
    archive = wiring.open_archive(settings(tmp_path, KMS_KRAKEN_DEPTH="25"))
    assert archive is not None and archive.depth == 25
    roller = wiring.make_roller(settings(tmp_path, KMS_STORE_HISTORY_LIMIT="1000",
                                         KMS_ARCHIVE_KEEP_DAYS="3"), archive,
                                wiring.open_store(s))
    assert roller.history_limit == 1000 and roller.keep_days == 3


async def test_an_auth_service_comes_ready(tmp_path: Path) -> None:
    s = settings(tmp_path, KMS_AUTH_BCRYPT_COST="4")
    auth = await wiring.open_auth(s)
    try:
        assert (tmp_path / "users.sqlite3").exists()  # opened, schema made
        assert s.paths.secret_file.exists()  # a secret generated once, kept
        assert auth.hasher.queue.started == 1  # the dummy hash made already
        user = await auth.register("first@example.com", "correct horse battery")
        token = (await auth.login("first@example.com", "correct horse battery", "t")).token
        assert auth.verify(token).user_id == user.id
    finally:
        await auth.close()
    again = await wiring.open_auth(s)  # the same secret: the token still verifies
    try:
        assert again.verify(token).user_id == user.id
    finally:
        await again.close()
