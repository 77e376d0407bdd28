"""Python's cyclic garbage collector, tuned for a long-running daemon.

Reference counting frees almost everything the daemon makes (frames, snapshots, level
tuples); the cyclic collector is for the rare cycle. But a full collection walks every
object that lived long enough, and a daemon tracking thousands of pairs holds hundreds of
thousands of them for good (books, their levels, metric series). Measured with
``bench/scale.py --pairs 3000`` and a callback timing every collection: a full collection
every 10-15 s, 115-187 ms each, finding 0-144 objects; the tick it met stored its 3,000
snapshots that much later. So:

* long-lived objects are *frozen* (``gc.freeze``: left out of every collection) a few times
  after start (:data:`FREEZE_AT`: pairs are subscribed in paced batches and their books
  filled over the first minutes), then every :data:`REFREEZE_EVERY` seconds. Each refreeze
  first thaws and collects everything once: one full pause then, none in between, and a cycle
  among frozen objects is kept at most until the next refreeze;
* the youngest generation is collected every :data:`GEN0_THRESHOLD` allocations rather than
  Python's 700, so the young collections are fewer (together they paused the daemon 0.67 s
  a minute at 3,000 pairs with both changes, 2.5 s without).

Only ``kms daemon run`` does this (:class:`~.process.Daemon`); it puts everything back when
the daemon stops.

And glibc's malloc, which keeps an arena per thread that allocates at once (up to eight per
core): the daemon's threads (the SQLite writer, its readers and checkpointer, the metrics
renderer, the executor's) each held their own, with its free memory kept. ``kms daemon run``
caps them at :data:`MALLOC_ARENAS` (:func:`limit_malloc_arenas`, what the environment
variable ``MALLOC_ARENA_MAX`` does): ``bench/scale.py --pairs 3000``, two runs each, 268-269
MB of RSS before, 216-249 MB with two arenas, the same latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import time
from collections.abc import Iterator, Sequence

log = logging.getLogger(__name__)

#: seconds after start when long-lived objects are frozen
FREEZE_AT: tuple[float, ...] = (30.0, 120.0, 600.0)
#: then again this often (each time: thaw, one full collection, freeze)
REFREEZE_EVERY = 3600.0
#: allocations between collections of the youngest generation (Python's default: 700)
GEN0_THRESHOLD = 10_000


#: glibc malloc arenas ``kms daemon run`` keeps (glibc's own cap: eight per core)
MALLOC_ARENAS = 2
#: ``mallopt``'s parameter for that cap (glibc's ``M_ARENA_MAX``)
_M_ARENA_MAX = -8


@contextlib.contextmanager
def collections_held() -> Iterator[None]:
    """No cyclic collection while held (those due run at the first allocation after); for
    the publish tick. Nested holds and a collector disabled by someone else are left as
    they were."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap this process's glibc malloc arenas at ``arenas`` (threads started later share
    them); whether it was done: not on a C library without ``mallopt`` (musl, macOS), nor
    when ``MALLOC_ARENA_MAX`` is set (the operator's figure stands)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))


class GcPolicy:
    """``await run()`` for the daemon's life (cancel it to stop); see the module."""

    def __init__(self, at: Sequence[float] = FREEZE_AT,
                 every: float = REFREEZE_EVERY) -> None:
        self.at = tuple(at)
        self.every = every
        #: how many refreezes ran, and the objects frozen by the last
        self.refreezes = 0
        self.frozen = 0

    async def run(self) -> None:
        before = gc.get_threshold()
        gc.set_threshold(GEN0_THRESHOLD, *before[1:])
        try:
            last = 0.0
            for t in self.at:
                await asyncio.sleep(max(0.0, t - last))
                last = t
                self.refreeze()
            while True:
                await asyncio.sleep(self.every)
                self.refreeze()
        finally:
            gc.unfreeze()
            gc.set_threshold(*before)

    def refreeze(self) -> None:
        """Thaw, collect everything once, freeze what is left."""
        started = time.perf_counter()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.refreezes += 1
        self.frozen = gc.get_freeze_count()
        log.info("gc: %d long-lived objects frozen (a full collection first: %.0f ms)",
                 self.frozen, (time.perf_counter() - started) * 1000)
