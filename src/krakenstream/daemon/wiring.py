"""The daemon's wiring: the one place that turns :class:`~krakenstream.config.Settings` into
backends.

The bus, the history store and the users' store take plain values (constructor arguments,
small frozen option values); only this module and the CLI read the settings, so a backend
can be built, tested and benchmarked without a configuration, and a new setting touches the
edge, not the backend. ``tests/test_layers.py`` holds the rule.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ..bus.base import SnapshotBus
from ..bus.memory import MemoryBus
from ..config import Settings, as_options
from ..store.archive import Archive, ArchiveRoller
from ..store.base import HistoryStore
from ..store.redis import RedisHistoryStore
from ..store.sqlite import SQLiteHistoryStore
from ..users.access import AccessCache
from ..users.base import UserStore
from ..users.passwords import PasswordHasher
from ..users.service import AuthService
from ..users.throttle import LoginThrottle, RegistrationLimit
from ..users.tokens import TokenCodec, load_secret


def make_bus(settings: Settings) -> SnapshotBus:
    """The bus ``bus.backend`` names, not yet started."""
    if settings.bus.backend == "kafka":
        # imported here so the embedded stack never loads the Kafka client
        from ..bus.kafka import KafkaBus, KafkaOptions

        return KafkaBus(as_options(settings.kafka, KafkaOptions),
                        buffer_ticks=settings.bus.buffer_ticks)
    return MemoryBus(queue_size=settings.bus.queue_size, buffer_ticks=settings.bus.buffer_ticks)


def sqlite_path(settings: Settings) -> Path:
    """``store.path``, or ``history.sqlite3`` in the data dir (``KMS_HOME`` when set)."""
    if settings.store.path:
        return Path(settings.store.path).expanduser()
    return settings.paths.data_dir / "history.sqlite3"


def open_store(settings: Settings) -> HistoryStore:
    """The history store ``store.backend`` names, built but not yet opened
    (``await store.open()``)."""
    if settings.store.backend == "redis":
        return RedisHistoryStore(
            settings.redis.url,
            prefix=settings.redis.prefix,
            history_limit=settings.store.history_limit,
        )
    return SQLiteHistoryStore(sqlite_path(settings), history_limit=settings.store.history_limit)


def archive_path(settings: Settings) -> Path:
    """``archive.path``, or ``archive/`` in the data dir (``KMS_HOME`` when set)."""
    if settings.archive.path:
        return Path(settings.archive.path).expanduser()
    return settings.paths.data_dir / "archive"


def open_archive(settings: Settings) -> Archive | None:
    """The Parquet archive (None when ``archive.enabled`` is false)."""
    if not settings.archive.enabled:
        return None
    return Archive(archive_path(settings), depth=settings.kraken.depth)


def make_roller(settings: Settings, archive: Archive, store: HistoryStore) -> ArchiveRoller:
    """The archive's writer for the ``analysis`` role, not yet started."""
    return ArchiveRoller(
        archive, store,
        history_limit=settings.store.history_limit,
        roll_rows=settings.archive.roll_rows,
        keep_days=settings.archive.keep_days,
    )


def open_user_store(settings: Settings) -> UserStore:
    """The users' store ``users.backend`` names, not yet opened (``await store.open()``)."""
    if settings.users.backend == "mysql":
        from ..users.mysql import MysqlUserStore

        return MysqlUserStore(settings.mysql.url)
    from ..users.sqlite import SqliteUserStore

    path = Path(settings.users.path) if settings.users.path else (
        settings.paths.data_dir / "users.sqlite3"
    )
    return SqliteUserStore(path.expanduser())


def secret(settings: Settings) -> bytes:
    """The tokens' signing secret: ``auth.secret``, or the secret file in the data dir.

    Blocking file I/O: call it from a thread (``asyncio.to_thread``) in async code.
    """
    return load_secret(settings.auth.secret, settings.paths.secret_file)


async def open_auth(settings: Settings) -> AuthService:
    """An :class:`AuthService` ready to use: secret loaded (or generated), store opened and
    its schema brought up to date, dummy hash prepared. Close it with ``await auth.close()``.

    Raises ConfigError (bad secret or secret file) and BackendUnavailable (store).
    """
    auth = settings.auth
    key = await asyncio.to_thread(secret, settings)
    tokens = TokenCodec(key, ttl=auth.token_ttl, issuer=auth.issuer, audience=auth.audience)
    hasher = PasswordHasher(auth.bcrypt_cost, queue_limit=auth.hash_queue)
    store = open_user_store(settings)
    await store.open()
    try:
        await hasher.prepare()
    except BaseException:
        await store.close()
        raise
    return AuthService(
        store,
        hasher=hasher,
        tokens=tokens,
        throttle=LoginThrottle(max_failures=auth.login_max_failures, window=auth.login_window),
        min_password_length=auth.min_password_length,
        registration=auth.registration,
        registration_limit=RegistrationLimit(max_attempts=auth.registration_max,
                                             window=auth.registration_window),
        access=AccessCache(store, ttl=auth.access_ttl),
    )
