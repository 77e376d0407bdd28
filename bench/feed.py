"""Feed benchmark: the Kraken feed alone (a pool tracking ``*``) against ``kms sim``.

The simulator runs as its own process (``kms sim --synthetic N --rate R``), so this process
holds only the feed: the pool resolves ``*`` from the simulator's listing, opens its
connections (``kraken.pairs_per_connection`` pairs each, ``kraken.connect_spacing`` apart),
subscribes every online pair and verifies every frame. Once every pair is live it measures,
over ``--seconds``:

* book frames/s received (every one decoded, applied and checked against its CRC32);
* this process's CPU (user + system, from ``/proc/self/stat`` via ``os.times``) per frame,
  and in cores;
* how long it took from start to every pair live, and how many connections it used;
* checksum mismatches, resyncs and reconnects during the window (all must be 0).

The simulator is one Python process: past a few thousand frames a second it falls behind
(it says so on its stderr), and frames/s is then what it delivered, not what the feed could
take; the CPU per frame is the feed's either way.

It is the feed's share only; ``bench/scale.py`` measures the whole daemon (feed, ticks, bus,
store). Run: ``.venv/bin/python bench/feed.py [--pairs 3000] [--rate 3] [--seconds 30]
[--per-connection 200] [--json]``. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass

from krakenstream.feed.options import FeedOptions
from krakenstream.feed.pool import FeedPool
from procs import start_sim


@dataclass(frozen=True)
class Result:
    pairs: int
    rate: float
    per_connection: int
    connections: int
    seconds_to_live: float
    seconds: float
    frames: int
    frames_per_s: float
    cpu_us_per_frame: float
    cores: float
    mismatches: int
    resyncs: int
    #: reconnections while every pair was being subscribed, and during the window
    reconnects_to_live: int
    reconnects: int


def cpu() -> float:
    t = os.times()
    return t.user + t.system


async def measure(url: str, args: argparse.Namespace) -> Result:
    options = FeedOptions(url=url, pairs_per_connection=args.per_connection,
                          heartbeat_timeout=10.0)
    started = time.monotonic()
    async with FeedPool(options, ["*"]) as pool:
        async with asyncio.timeout(args.live_within):
            await pool.wait_live()
        to_live = time.monotonic() - started
        await asyncio.sleep(args.warmup)
        reconnects0 = pool.connection_status().reconnects
        frames0 = sum(st.frames for st in pool.status().values())
        cpu0, t0 = cpu(), time.monotonic()
        await asyncio.sleep(args.seconds)
        cpu1, t1 = cpu(), time.monotonic()
        status = pool.status()
        frames = sum(st.frames for st in status.values()) - frames0
        conn = pool.connection_status()
        wall = t1 - t0
        return Result(
            pairs=len(status), rate=args.rate, per_connection=args.per_connection,
            connections=len(pool.connections()), seconds_to_live=round(to_live, 2),
            seconds=round(wall, 2), frames=frames, frames_per_s=round(frames / wall, 1),
            cpu_us_per_frame=round((cpu1 - cpu0) / max(frames, 1) * 1e6, 2),
            cores=round((cpu1 - cpu0) / wall, 3),
            mismatches=sum(st.mismatches for st in status.values()),
            resyncs=sum(st.resyncs for st in status.values()),
            reconnects_to_live=reconnects0,
            reconnects=conn.reconnects - reconnects0,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3000, help="kms sim --synthetic N")
    ap.add_argument("--rate", type=float, default=3.0, help="updates a second per pair")
    ap.add_argument("--seconds", type=float, default=30.0, help="measurement window")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--per-connection", type=int, default=200)
    ap.add_argument("--live-within", type=float, default=120.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryFile("w+") as sim_log:
        proc, url = start_sim(args.pairs, args.rate, sim_log)
        try:
            result = asyncio.run(measure(url, args))
        finally:
            proc.terminate()
            proc.wait(10)
        sim_log.seek(0)
        behind = sum("fell" in line and "behind" in line for line in sim_log)
    if args.json:
        print(json.dumps({**asdict(result), "sim_behind_warnings": behind}))
        return
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, "
          f"kms sim --synthetic {args.pairs} --rate {args.rate:g}, pool tracking '*'")
    for key, value in asdict(result).items():
        print(f"  {key:18s} {value}")
    print(f"  (expected {result.pairs * args.rate:,.0f} frames/s; the simulator said "
          f"{behind} time(s) that it fell behind)")


if __name__ == "__main__":
    main()
