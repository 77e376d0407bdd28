"""Snapshot history: the newest ``store.history_limit`` snapshots per pair, queryable by time.

Two backends, :class:`SQLiteHistoryStore` (the embedded default) and
:class:`RedisHistoryStore`; the daemon's wiring (:func:`krakenstream.daemon.wiring.open_store`)
builds the one ``store.backend`` names. The caller opens and closes it::

    store = SQLiteHistoryStore(path, history_limit=10_000)
    await store.open()
    try:
        await store.add(snapshots)
        async for line in store.history_json("BTC/USD", limit=100):
            ...
    finally:
        await store.close()
"""

from __future__ import annotations

from .base import CHUNK_SIZE, HistoryStore, Order
from .redis import RedisHistoryStore
from .sqlite import SQLiteHistoryStore

__all__ = [
    "CHUNK_SIZE",
    "HistoryStore",
    "Order",
    "RedisHistoryStore",
    "SQLiteHistoryStore",
]

