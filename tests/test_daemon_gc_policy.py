"""The daemon's garbage-collector policy: long-lived objects frozen, cycles still collected;
and glibc's malloc arenas capped."""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import subprocess
import sys
import time
import weakref

import pytest

from krakenstream.daemon.gc_policy import (
    GEN0_THRESHOLD,
    MALLOC_ARENAS,
    GcPolicy,
    collections_held,
)


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


ARENA_PROBE = """
import ctypes, sys, threading
from krakenstream.daemon.gc_policy import limit_malloc_arenas
if sys.argv[1] == "cap":
    print("applied", limit_malloc_arenas(), flush=True)
barrier = threading.Barrier(7)
keep = []
def work():
    keep.append([bytearray(4096) for _ in range(50)])  # malloc in this thread
    barrier.wait()
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads:
    t.start()
barrier.wait()  # six threads alive, each has allocated
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per arena, on stderr
barrier.wait()
for t in threads:
    t.join()
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc arenas")
@pytest.mark.parametrize("how", ["cap", "plain", "env"])
def test_the_daemon_caps_glibc_malloc_arenas(how: str) -> None:
    """Six threads allocating at once get an arena each by default; after
    limit_malloc_arenas() they share two; MALLOC_ARENA_MAX set by the operator wins."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    if how == "env":
        env["MALLOC_ARENA_MAX"] = "3"
    out = subprocess.run([sys.executable, "-c", ARENA_PROBE, "plain" if how == "plain"
                          else "cap"], env=env, capture_output=True, text=True, timeout=60,
                         check=True)
    arenas = sum(1 for line in out.stderr.splitlines() if line.startswith("Arena "))
    if how == "cap":
        assert "applied True" in out.stdout and arenas == MALLOC_ARENAS
    elif how == "env":
        assert "applied False" in out.stdout and arenas == 3
    else:
        assert arenas == 7  # the main thread's and one for each of the six


def test_collections_held_pauses_the_collector_and_leaves_it_as_it_was() -> None:
    """The publish tick's hold: no automatic collection inside (the collections due run
    after); nested holds and a collector someone else disabled are left alone."""
    assert gc.isenabled()
    with collections_held():
        assert not gc.isenabled()
        with collections_held():
            assert not gc.isenabled()
        assert not gc.isenabled(), "the inner hold let go of the outer's"
    assert gc.isenabled()
    gc.disable()
    try:
        with collections_held():
            assert not gc.isenabled()
        assert not gc.isenabled(), "re-enabled a collector someone else disabled"
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), collections_held():
        raise RuntimeError("a tick that fails")
    assert gc.isenabled()
