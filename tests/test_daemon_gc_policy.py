"""The daemon's garbage-collector policy: long-lived objects frozen, cycles still collected."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

from krakenstream.daemon.gc_policy import GEN0_THRESHOLD, GcPolicy


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_a_refreeze_collects_cycles_then_freezes_what_lives() -> None:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b  # a cycle: reference counting alone never frees it
    kept = [_Node() for _ in range(100)]
    policy = GcPolicy()
    try:
        policy.refreeze()
        assert gone() is None
        assert policy.refreezes == 1 and policy.frozen == gc.get_freeze_count() > len(kept)
        # frozen objects are left out of collections: a cycle among them stays...
        c, d = _Node(), _Node()
        c.other, d.other = d, c
        frozen_cycle = weakref.ref(c)
        gc.freeze()
        del c, d
        gc.collect()
        assert frozen_cycle() is not None
        # ...until the next refreeze thaws and collects everything once
        policy.refreeze()
        assert frozen_cycle() is None and policy.refreezes == 2
    finally:
        gc.unfreeze()


async def test_run_refreezes_on_its_schedule_and_puts_everything_back() -> None:
    before = gc.get_threshold()
    policy = GcPolicy(at=(0.01, 0.02), every=0.02)
    task = asyncio.create_task(policy.run())
    deadline = time.monotonic() + 10
    while policy.refreezes < 4:  # the two after start, then every 0.02 s
        assert time.monotonic() < deadline, f"{policy.refreezes} refreezes in 10 s"
        await asyncio.sleep(0.01)
    assert gc.get_threshold()[0] == GEN0_THRESHOLD and gc.get_freeze_count() > 0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
