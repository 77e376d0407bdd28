"""Snapshot history: the newest ``store.history_limit`` snapshots per pair, queryable by time.

``open_store(settings)`` builds the configured backend (``store.backend``: ``sqlite``, the
embedded default, or ``redis``); the caller opens and closes it::

    store = open_store(settings)
    await store.open()
    try:
        await store.add(snapshots)
        async for line in store.history_json("BTC/USD", limit=100):
            ...
    finally:
        await store.close()
"""

from __future__ import annotations

from pathlib import Path

from ..config import Settings
from .base import CHUNK_SIZE, HistoryStore, Order
from .redis import RedisHistoryStore
from .sqlite import SQLiteHistoryStore

__all__ = [
    "CHUNK_SIZE",
    "HistoryStore",
    "Order",
    "RedisHistoryStore",
    "SQLiteHistoryStore",
    "open_store",
    "sqlite_path",
]


def sqlite_path(settings: Settings) -> Path:
    """``store.path``, or ``history.sqlite3`` in the data dir (``KMS_HOME`` when set)."""
    if settings.store.path:
        return Path(settings.store.path).expanduser()
    return settings.paths.data_dir / "history.sqlite3"


def open_store(settings: Settings) -> HistoryStore:
    """The configured history store, built but not yet opened (``await store.open()``)."""
    if settings.store.backend == "redis":
        return RedisHistoryStore(
            settings.redis.url,
            prefix=settings.redis.prefix,
            history_limit=settings.store.history_limit,
        )
    return SQLiteHistoryStore(sqlite_path(settings), history_limit=settings.store.history_limit)
