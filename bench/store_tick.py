"""Benchmark: one tick of every pair into the SQLite history store, with the event loop busy.

At 3,000 pairs the history writer stores 3,000 snapshots each second, in batches of 500,
while the event loop also handles some 9,000 book frames a second (about a third of its
time). This times exactly that part of publish→store: ``SQLiteHistoryStore.add`` (its
writer thread, the real file in WAL mode) for one tick of ``--pairs`` depth-10 snapshots in
``--batch`` rows a call, while a task keeps the loop busy ``--busy`` of the time with Python
work (3 ms bursts), as the feed does. One tick every ``--every`` seconds.

``--cap`` and ``--prefill`` measure the store at its cap: the prefill writes that many
rows a pair first (in big batches, not timed), so the timed ticks trim as the steady state of
a daemon that has run longer than the cap does.

Prints, over ``--ticks`` timed ticks: the tick's wall time (p50, p90, max) and the process
CPU per tick, then the file's bytes per row.

    .venv/bin/python bench/store_tick.py [--pairs 3000] [--ticks 40] [--batch 500]
        [--busy 0.3] [--cap 10000] [--prefill 0] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from krakenstream.core.snapshot import Snapshot
from krakenstream.store.sqlite import SQLiteHistoryStore

T0 = 1_764_000_000_000
DEPTH = 10


@dataclass
class Result:
    pairs: int
    batch: int
    busy: float
    cap: int
    prefill: int
    ticks: int
    tick_ms_p50: float
    tick_ms_p90: float
    tick_ms_max: float
    cpu_ms_per_tick: float
    #: the process's CPU from the first timed tick to the end over the ticks: also what the
    #: store does between ticks (moving recent rows into settled history), and the busy task
    cpu_ms_per_tick_all: float
    busy_share_seen: float
    load_1min: float


def snapshots(pairs: list[str], mids: list[int], tick: int, rng: random.Random) -> list[Snapshot]:
    out = []
    for pair, mid in zip(pairs, mids, strict=True):
        bids = tuple((mid - 1 - 3 * i, rng.randint(1, 10**9)) for i in range(DEPTH))
        asks = tuple((mid + 1 + 3 * i, rng.randint(1, 10**9)) for i in range(DEPTH))
        out.append(Snapshot(pair=pair, ts=T0 + tick * 1000, exchange_ts=None, seq=tick + 1,
                            price_precision=2, qty_precision=8, bids=bids, asks=asks,
                            checksum=rng.getrandbits(32), origin="bench000"))
    return out


async def busy_loop(share: float, seen: list[float]) -> None:
    """Hold the loop ``share`` of the time, in 3 ms bursts of Python work."""
    burst = 0.003
    rest = burst * (1 - share) / share
    while True:
        t = time.perf_counter()
        while time.perf_counter() - t < burst:
            sum(range(200))
        seen.append(time.perf_counter() - t)
        await asyncio.sleep(rest)


async def measure(args: argparse.Namespace) -> Result:
    rng = random.Random(7)
    pairs = [f"SYN{i + 1:04d}/USD" for i in range(args.pairs)]
    mids = [rng.randint(10_000, 10_000_000) for _ in pairs]
    with tempfile.TemporaryDirectory(prefix="kms-bench-store-") as tmp:
        path = Path(tmp) / "history.sqlite3"
        store = SQLiteHistoryStore(path, history_limit=args.cap)
        await store.open()
        try:
            for first in range(0, args.prefill, 20):  # not timed: 20 ticks an add
                await store.add([s for tick in range(first, min(first + 20, args.prefill))
                                 for s in snapshots(pairs, mids, tick, rng)])
            seen: list[float] = []
            busy = (asyncio.create_task(busy_loop(args.busy, seen)) if args.busy > 0
                    else None)
            walls, cpus = [], []
            started = time.perf_counter()
            for k in range(args.ticks + 2):
                tick = args.prefill + k
                batch = snapshots(pairs, mids, tick, rng)
                t, c = time.perf_counter(), time.process_time()
                for i in range(0, len(batch), args.batch):
                    await store.add(batch[i:i + args.batch])
                if k == 2:
                    c_all = c
                if k >= 2:  # two warm-up ticks
                    walls.append(time.perf_counter() - t)
                    cpus.append(time.process_time() - c)
                await asyncio.sleep(max(0.0, started + (k + 1) * args.every
                                        - time.perf_counter()))
            elapsed = time.perf_counter() - started
            c_all = time.process_time() - c_all
            if busy is not None:
                busy.cancel()
        finally:
            await store.close()
    walls.sort()
    return Result(
        pairs=args.pairs, batch=args.batch, busy=args.busy, cap=args.cap,
        prefill=args.prefill, ticks=args.ticks,
        tick_ms_p50=round(statistics.median(walls) * 1000, 1),
        tick_ms_p90=round(walls[int(len(walls) * 0.9)] * 1000, 1),
        tick_ms_max=round(walls[-1] * 1000, 1),
        cpu_ms_per_tick=round(statistics.median(cpus) * 1000, 1),
        cpu_ms_per_tick_all=round(c_all / args.ticks * 1000, 1),
        busy_share_seen=round(sum(seen) / elapsed, 2),
        load_1min=os.getloadavg()[0],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3000)
    ap.add_argument("--ticks", type=int, default=40)
    ap.add_argument("--batch", type=int, default=500, help="rows an add (the writer's 500)")
    ap.add_argument("--busy", type=float, default=0.3,
                    help="share of the loop's time held by other work (0 for none)")
    ap.add_argument("--every", type=float, default=0.5, help="seconds from tick to tick")
    ap.add_argument("--cap", type=int, default=10_000, help="history_limit")
    ap.add_argument("--prefill", type=int, default=0, help="rows a pair written first")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not 0 <= args.busy < 1:
        raise SystemExit("--busy is a share of the time, from 0 to below 1")
    result = asyncio.run(measure(args))
    if args.json:
        print(json.dumps(asdict(result)))
        return
    print(f"python {platform.python_version()}, {os.cpu_count()} cores: "
          f"{' '.join(sys.argv[1:]) or 'defaults'}")
    for key, value in asdict(result).items():
        print(f"  {key:18s} {value}")


if __name__ == "__main__":
    main()
