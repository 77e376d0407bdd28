"""The snapshot bus: the orderbook role publishes into it, analysis and the gateway read it.

Two backends: :class:`MemoryBus` (in-process, the embedded default) and
:class:`~krakenstream.bus.kafka.KafkaBus` (imported from its module, so the embedded stack
never loads the Kafka client). Both keep the contract written in :mod:`krakenstream.bus.base`;
the daemon's wiring (:func:`krakenstream.daemon.wiring.make_bus`) picks the one
``bus.backend`` names.
"""

from __future__ import annotations

from .base import BusStats, BusSubscription, SnapshotBus, SubscriptionStats
from .memory import MemoryBus, MemorySubscription

__all__ = [
    "BusStats",
    "BusSubscription",
    "MemoryBus",
    "MemorySubscription",
    "SnapshotBus",
    "SubscriptionStats",
]

