"""``feed/changes.py``: state changes to a hook at once, to one reader through a queue that
drops its oldest when full (counted), and to whoever waits for "something changed"."""

from __future__ import annotations

import asyncio
import logging

import pytest

from krakenstream.feed.changes import StateChanges
from krakenstream.feed.status import FeedEvent, PairState

L, S = PairState.LIVE, PairState.STALE


def ev(pair: str, i: int = 0) -> FeedEvent:
    return FeedEvent(pair, L, S, "quiet", float(i))


async def read_all(changes: StateChanges) -> list[FeedEvent]:
    return [e async for e in changes]


async def test_a_reader_and_a_hook_get_every_change_in_order() -> None:
    changes = StateChanges(10)
    hooked: list[FeedEvent] = []
    events = [ev("A", 1), ev("B", 2), ev("A", 3)]
    changes.publish(events, hooked.append)
    changes.close()
    assert hooked == events
    assert await asyncio.wait_for(read_all(changes), 5) == events
    assert changes.dropped == 0


async def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    changes = StateChanges(3)
    changes.publish([ev(p) for p in "ABCDE"], None)
    assert changes.dropped == 2
    changes.close()  # the close marker takes a place too: one more dropped
    assert [e.pair for e in await asyncio.wait_for(read_all(changes), 5)] == ["D", "E"]
    assert changes.dropped == 3


async def test_a_failing_hook_is_logged_and_the_changes_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    changes = StateChanges(10)

    def hook(event: FeedEvent) -> None:
        if event.pair == "A":
            raise RuntimeError("hook bug")

    with caplog.at_level(logging.ERROR, logger="krakenstream.feed.changes"):
        changes.publish([ev("A"), ev("B")], hook)
    assert [r.getMessage() for r in caplog.records] == [
        "feed on_state_change hook failed pair=A"]
    changes.close()
    assert [e.pair for e in await asyncio.wait_for(read_all(changes), 5)] == ["A", "B"]


async def test_waiters_wake_on_each_change_and_on_close() -> None:
    changes = StateChanges(10)
    first = asyncio.create_task(changes.wait())
    await asyncio.sleep(0)
    assert not first.done()  # nothing changed yet
    changes.publish([ev("A")], None)
    await asyncio.wait_for(first, 5)
    second = asyncio.create_task(changes.wait())  # a new wait waits for the next change
    await asyncio.sleep(0)
    assert not second.done()
    changes.close()
    await asyncio.wait_for(second, 5)
    assert changes.closed
