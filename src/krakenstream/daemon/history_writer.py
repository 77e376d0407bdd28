"""The history writer, which is what the ``analysis`` role runs: snapshots from the bus into
the history store, exactly once in effect.

Named for what it does: it writes history (the analysis of a series of snapshots is
:mod:`krakenstream.core.analysis`). The role keeps its name, ``analysis``: ``kms daemon run
--roles analysis``, ``daemon.roles``, ``/health``'s ``roles``, the Compose service and the
Kafka group ``kms-analysis`` are a stable interface that scripts and deployments rely on, so
only the code's name changed.

From the Kafka bus into the Redis store, the snapshots go as the records carried them
(:class:`~krakenstream.core.codec.Encoded`): the bytes on the topic are the bytes Redis keeps,
so the writer checks each record and stores it without building a snapshot and encoding it
again (~20 µs a record, 3,000 a second at 3,000 pairs).

Batches are taken from the bus, written to the store, and only then committed, so a crash
between the two redelivers the batch (at-least-once) and the store's (pair, ts) key makes the
second write a no-op. A store that is down is retried with capped, jittered backoff
(:mod:`krakenstream.core.backoff`), holding the batch: nothing is committed that was not
stored. Each stored batch is then noted by the Parquet archive's roller
(:mod:`krakenstream.store.archive.roller`), which cuts hourly files from the store.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..bus.base import BusSubscription, EncodedSubscription, SnapshotBus
from ..core.backoff import backoff
from ..core.codec import Encoded
from ..core.snapshot import Snapshot
from ..errors import BackendUnavailable
from ..store.archive import ArchiveRoller
from ..store.base import EncodedWrites, HistoryStore
from ..tasks import died, report_failure
from .metrics import Metrics

log = logging.getLogger(__name__)

#: the first store retry waits up to this long (then capped exponential, full jitter)
RETRY_INITIAL = 0.1
#: snapshots a batch from the in-process bus: up to a whole tick of 3,000 pairs in one
#: store call. ``bench/scale.py --pairs 3000 --stack embedded --warmup 30``, two runs each:
#: 0.485-0.492 core, p99 376-386 ms, against 0.528-0.572 core, p99 455-640 ms at 500 (fewer
#: transactions write the tree's upper pages and the counts fewer times). From Kafka the
#: writer keeps 500: a whole tick a batch was slower there (p99 2,371 against 990 ms).
IN_PROCESS_BATCH = 3_000
#: snapshots a batch from Kafka
KAFKA_BATCH = 500

#: what a batch holds: snapshots, or snapshots as the bus carried them
_Item = TypeVar("_Item", Snapshot, Encoded)


@dataclass
class HistoryWriterStats:
    batches: int = 0
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    store_errors: int = 0


class HistoryWriter:
    """The ``analysis`` role: consume a bus group and write history.
    ``await start()`` / ``await stop()``."""

    def __init__(
        self,
        bus: SnapshotBus,
        store: HistoryStore,
        *,
        group: str,
        metrics: Metrics | None = None,
        batch_size: int = KAFKA_BATCH,
        poll_timeout: float = 0.5,
        retry_max: float = 5.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        archive: ArchiveRoller | None = None,
    ) -> None:
        self.bus = bus
        self.store = store
        #: told of every stored batch; it cuts the Parquet archive from the store
        self.archive = archive
        self.group = group
        self.metrics = metrics or Metrics()
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.retry_max = retry_max
        self._clock = clock
        self._rng = rng or random.Random()
        self._sub: BusSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.stats = HistoryWriterStats()
        #: since when (epoch seconds) writes fail without a success, and the last error;
        #: None while the last write succeeded (/health says degraded meanwhile)
        self.failing_since: float | None = None
        self.last_error: str | None = None

    async def start(self) -> None:
        self._sub = self.bus.subscribe(self.group)
        await self._sub.start()
        self._task = asyncio.create_task(self._run(), name="kms-analysis")
        self._task.add_done_callback(
            report_failure(log, "analysis role stopped: nothing more is stored until a restart"))

    async def stop(self, *, drain: bool = True) -> None:
        """Stop consuming. With ``drain``, first store what the bus still holds for us."""
        task, self._task = self._task, None
        if task is None:
            return
        if drain and not task.done():
            self._stopping.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=10.0)
            except TimeoutError:
                log.warning("analysis drain timed out; stopping with snapshots unconsumed")
            except Exception:
                pass  # reported by report_failure when it happened
        task.cancel()
        # a task that failed earlier was reported then; closing must still go on
        await asyncio.gather(task, return_exceptions=True)
        if self._sub is not None:
            await self._sub.close()
            self._sub = None

    def problems(self) -> list[str]:
        """What /health says of this role: writes failing, or the role's task gone."""
        out: list[str] = []
        why = died(self._task)
        if why is not None:
            out.append(f"analysis role stopped ({why}): nothing more is stored until a restart")
        if self.failing_since is not None:
            out.append(f"history: cannot write for {self._clock() - self.failing_since:.0f} s: "
                       f"{self.last_error}")
        return out

    async def _run(self) -> None:
        assert self._sub is not None
        sub, store = self._sub, self.store
        # the store's method is looked up at every write, as ``self.store.add(batch)`` was
        if isinstance(sub, EncodedSubscription) and isinstance(store, EncodedWrites):
            await self._consume(sub, sub.get_encoded, lambda batch: store.add_encoded(batch))
        else:
            await self._consume(sub, sub.get_batch, lambda batch: store.add(batch))

    async def _consume(self, sub: BusSubscription,
                       get: Callable[[int, float], Awaitable[list[_Item]]],
                       add: Callable[[Sequence[_Item]], Awaitable[int]]) -> None:
        while True:
            batch = await get(self.batch_size, self.poll_timeout)
            if not batch:
                if self._stopping.is_set():
                    return  # drained
                continue
            await self._store(batch, add)
            await sub.commit()

    async def _store(self, batch: list[_Item],
                     add: Callable[[Sequence[_Item]], Awaitable[int]]) -> None:
        delays = backoff(RETRY_INITIAL, self.retry_max, rng=self._rng)
        while True:
            try:
                stored = await add(batch)
                break
            except BackendUnavailable as exc:
                self.stats.store_errors += 1
                self.metrics.store_errors.inc()
                if self.failing_since is None:
                    self.failing_since = self._clock()
                self.last_error = exc.message
                delay = next(delays)
                log.warning("history store unavailable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
        if self.failing_since is not None:
            log.info("history store writing again after %.1f s",
                     self._clock() - self.failing_since)
            self.failing_since = self.last_error = None
        if self.archive is not None:
            # after the store accepted it: the archive is cut from the store
            self.archive.note(batch)
            await self.archive.keep_up()
        now = self._clock()
        self.stats.batches += 1
        self.stats.received += len(batch)
        self.stats.stored += stored
        self.stats.duplicates += len(batch) - stored
        self.metrics.snapshots_stored.inc(stored)
        self.metrics.snapshots_duplicate.inc(len(batch) - stored)
        for snap in batch:
            self.metrics.publish_to_store.observe(max(0.0, now - snap.ts / 1000))
