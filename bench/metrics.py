"""Benchmark: ``GET /metrics`` at N pairs, and how long it keeps the event loop from others.

At 3,000 pairs the daemon's registry holds ~18,000 series (per pair: frames, checksum
mismatches, resyncs, live, snapshots published), and Prometheus text for all of them takes a
few hundred ms to render. This fills a daemon's own :class:`~krakenstream.daemon.metrics.
Metrics` with N pairs' series, then calls the gateway's real ``/metrics`` route (the app over
an in-process bus and SQLite, through ``httpx.ASGITransport``) while a task on the same event
loop wakes every 2 ms and records how late it woke: the longest wait is how long the scrape
held the loop (the ticks, the feed and the history writer wait as long).

    .venv/bin/python bench/metrics.py [--pairs 3000] [--scrapes 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time

import httpx

from krakenstream.config import load_settings
from krakenstream.daemon.gateway.app import create_app
from krakenstream.daemon.services import build_services


async def measure(pairs: int, scrapes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kms-bench-metrics-") as home:
        settings = load_settings(env={"KMS_HOME": home, "KMS_AUTH_BCRYPT_COST": "4"})
        services = await build_services(settings, ("gateway",))
        try:
            m = services.metrics
            for i in range(pairs):
                pair = f"SYN{i:04d}/USD"
                m.feed_frames.labels(pair).set(12_345)
                m.feed_mismatches.labels(pair).set(0)
                m.feed_resyncs.labels(pair).set(0)
                m.feed_live.labels(pair).set(1)
                m.snapshots_published.labels(pair).inc(100)
            app = create_app(services)
            loop = asyncio.get_running_loop()
            worst = 0.0
            running = True

            async def ticker() -> None:
                nonlocal worst
                while running:
                    began = loop.time()
                    await asyncio.sleep(0.002)
                    worst = max(worst, loop.time() - began - 0.002)

            walls: list[float] = []
            holds: list[float] = []
            size = 0
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
                    await c.get("/metrics")  # warm-up
                    for _ in range(scrapes):
                        worst, running = 0.0, True
                        task = asyncio.create_task(ticker())
                        await asyncio.sleep(0.05)
                        began = time.perf_counter()
                        r = await c.get("/metrics")
                        walls.append(time.perf_counter() - began)
                        running = False
                        await task
                        holds.append(worst)
                        size = len(r.content)
        finally:
            await services.close()
    return {"pairs": pairs, "bytes": size, "scrape_ms": round(statistics.median(walls) * 1000, 1),
            "longest_hold_ms": round(statistics.median(holds) * 1000, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3000)
    ap.add_argument("--scrapes", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = asyncio.run(measure(args.pairs, args.scrapes))
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"  {key:16s} {value}")


if __name__ == "__main__":
    main()
