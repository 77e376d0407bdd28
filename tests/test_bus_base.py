"""``bus/base.py``: the bus's Protocols, which every implementation meets (the contract suite,
``test_bus_contract.py``, runs the behaviour on each), and ``async with`` written once."""

from __future__ import annotations

import dataclasses

import pytest

from krakenstream.bus.base import (
    BusStats,
    BusSubscription,
    SnapshotBus,
    StartsAndCloses,
    SubscriptionStats,
)
from krakenstream.bus.kafka import KafkaBus, KafkaOptions
from krakenstream.bus.memory import MemoryBus


def test_every_bus_and_its_subscriptions_meet_the_protocols() -> None:
    for bus in (MemoryBus(), KafkaBus(KafkaOptions(bootstrap="127.0.0.1:1"))):
        assert isinstance(bus, SnapshotBus)  # built only: nothing is connected
        assert isinstance(bus.subscribe("analysis"), BusSubscription)
        assert isinstance(bus.subscribe(None), BusSubscription)


async def test_async_with_starts_and_closes_once_each() -> None:
    calls: list[str] = []

    class Thing(StartsAndCloses):
        async def start(self) -> None:
            calls.append("start")

        async def close(self) -> None:
            calls.append("close")

    with pytest.raises(RuntimeError, match="inside"):
        async with Thing() as thing:
            assert isinstance(thing, Thing) and calls == ["start"]
            raise RuntimeError("inside")
    assert calls == ["start", "close"]  # closed on the way out of an error too
    with pytest.raises(NotImplementedError):
        await StartsAndCloses().start()


def test_stats_start_at_zero_and_are_frozen_values() -> None:
    assert dataclasses.asdict(BusStats()) == {
        "published": 0, "delivered": 0, "dropped": 0, "buffered": 0, "errors": 0,
        "malformed": 0, "losing": False, "client_errors": 0}
    assert dataclasses.asdict(SubscriptionStats()) == {
        "delivered": 0, "dropped": 0, "malformed": 0, "buffered": 0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        SubscriptionStats().dropped = 1  # type: ignore[misc]
