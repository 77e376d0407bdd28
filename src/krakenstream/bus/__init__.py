"""The snapshot bus: the orderbook role publishes into it, analysis and the gateway read it.

``make_bus(settings)`` picks the backend named by ``bus.backend``: ``memory`` (in-process,
the embedded default) or ``kafka`` (``[kafka]`` settings). Both keep the contract written in
:mod:`krakenstream.bus.base`.
"""

from __future__ import annotations

from ..config import Settings
from .base import BusStats, BusSubscription, SnapshotBus, SubscriptionStats
from .memory import MemoryBus, MemorySubscription

__all__ = [
    "BusStats",
    "BusSubscription",
    "MemoryBus",
    "MemorySubscription",
    "SnapshotBus",
    "SubscriptionStats",
    "make_bus",
]


def make_bus(settings: Settings) -> SnapshotBus:
    """The bus ``settings.bus.backend`` names, not yet started."""
    if settings.bus.backend == "kafka":
        # imported here so the embedded stack never loads the Kafka client
        from .kafka import KafkaBus

        return KafkaBus.from_settings(settings)
    return MemoryBus.from_settings(settings)
