"""Scenario: 200 WebSocket clients and 20 HTTP clients for 30 s against one daemon tracking
three simulator pairs, under the default stream limits (``gateway.max_ws_clients`` 1,000,
``gateway.max_ws_per_user`` 50: four accounts of 50 streams each).

Asserted: no 5xx; every stream stays open to the end and receives each pair's snapshots
continuously: no duplicate, ``seq`` always rising, and a hole in ``seq`` only where the
snapshot says ``gap_before``; the daemon's RSS bounded (its peak while the clients are on, and
after they leave, at most :data:`RSS_GROWTH_MB` above what it was before they came). Recorded:
the HTTP clients' latency (p50, p99, max), the daemon's CPU and the load generator's own.

The load generator is one asyncio process (this test's): websockets' client and one httpx
client, nothing parsed but each message's JSON. Its CPU time and its event loop's lag are
recorded beside the latency, so a figure that the generator itself inflated would show: a
loop lagging by milliseconds adds them to every latency it measures. So is the time each
side waited for a CPU: on a shared machine that, not the daemon's work, can be most of a
latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from cli_support import LiveDaemon

from .conftest import Figures, rss_mb

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

PAIRS = ("ETH/USD", "BTC/USD", "SOL/USD")
INTERVAL = 0.5
WS_CLIENTS = 200
HTTP_CLIENTS = 20
#: accounts the streams are shared among (the default gateway.max_ws_per_user is 50)
ACCOUNTS = 4
DURATION = 30.0
#: pause of each HTTP client between its requests
HTTP_PAUSE = 0.05
#: the most the daemon's RSS may grow, peak and after, over what it was before the clients
RSS_GROWTH_MB = 64.0
#: snapshots a stream's first and last may be off the store's newest at the run's start and
#: end (the store is written after the bus, a snapshot may be in flight)
IN_FLIGHT = 2


@dataclass
class Stream:
    """One WebSocket client's record of its pair."""

    pair: str
    seqs: list[int] = field(default_factory=list)
    duplicates: int = 0
    #: holes in seq with gap_before set, and without it
    marked: int = 0
    unmarked: list[tuple[int, int]] = field(default_factory=list)
    statuses: int = 0
    close_code: int | None = None
    closed_early: bool = False

    def take(self, raw: str | bytes) -> None:
        message = orjson.loads(raw)
        if message.get("type") != "snapshot":
            self.statuses += 1
            return
        data = message["data"]
        seq = int(data["seq"])
        if self.seqs:
            last = self.seqs[-1]
            if seq <= last:
                self.duplicates += 1
                return
            if seq > last + 1:
                if data.get("gap_before"):
                    self.marked += 1
                else:
                    self.unmarked.append((last, seq))
        self.seqs.append(seq)


@dataclass
class HttpTally:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    by_path: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    transport_errors: int = 0


def _sched(pid: int) -> tuple[float, float]:
    """A process's CPU time and its time waiting for a CPU (run queue), in seconds, summed
    over its threads (/proc/PID/task/*/schedstat). The wait says how much of a latency is
    the machine's: on a shared 2-core machine a process ready to run may wait longer than
    it runs."""
    ran = waited = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            fields = (task / "schedstat").read_text().split()
            ran, waited = ran + int(fields[0]), waited + int(fields[1])
    return ran / 1e9, waited / 1e9


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def _stream(url: str, token: str, stream: Stream, stop: asyncio.Event,
                  ready: asyncio.Event) -> None:
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                       open_timeout=30, max_queue=256) as ws:
        ready.set()
        try:
            while not stop.is_set():
                try:
                    async with asyncio.timeout(0.5):
                        stream.take(await ws.recv())
                except TimeoutError:
                    continue
        except ConnectionClosed as exc:
            stream.close_code = exc.rcvd.code if exc.rcvd is not None else None
            stream.closed_early = True


async def _http(client: httpx.AsyncClient, token: str, tally: HttpTally, stop: asyncio.Event,
                n: int) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    paths = [f"/api/analysis/latest/{p.replace('/', '-')}" for p in PAIRS]
    paths += [f"/api/orderbook/{PAIRS[n % len(PAIRS)].replace('/', '-')}?depth=10",
              f"/api/analysis/history/{PAIRS[n % len(PAIRS)].replace('/', '-')}?limit=20",
              "/api/pairs", "/health"]
    i = n
    while not stop.is_set():
        path = paths[i % len(paths)]
        i += 1
        began = time.perf_counter()
        try:
            r = await client.get(path, headers=auth)
        except httpx.TransportError as exc:
            tally.transport_errors += 1
            tally.errors.append(f"{path}: {exc!r}")
            continue
        took = time.perf_counter() - began
        tally.latencies.append(took)
        tally.by_path.setdefault(path.partition("?")[0].rsplit("/", 1)[0], []).append(took)
        tally.statuses[r.status_code] += 1
        if r.status_code != 200 and len(tally.errors) < 10:
            tally.errors.append(f"{r.status_code} {path}: {r.text[:200]}")
        await asyncio.sleep(HTTP_PAUSE)


async def _lag(stop: asyncio.Event, lags: list[float]) -> None:
    """The generator's own event-loop lag: how late a 10 ms sleep wakes up."""
    while not stop.is_set():
        began = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - began - 0.01)


async def _newest_seqs(client: httpx.AsyncClient, token: str) -> dict[str, int]:
    out = {}
    for pair in PAIRS:
        r = await client.get(f"/api/analysis/latest/{pair.replace('/', '-')}",
                             headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        out[pair] = int(r.json()["seq"])
    return out


async def _load(d: LiveDaemon, tokens: list[str], figures: Figures, pid: int
                ) -> tuple[list[Stream], HttpTally, dict[str, tuple[int, int]], float]:
    ws_base = d.url.replace("http", "ws")
    streams = [Stream(PAIRS[i % len(PAIRS)]) for i in range(WS_CLIENTS)]
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in streams]
    tasks = [asyncio.create_task(_stream(f"{ws_base}/api/stream/{s.pair.replace('/', '-')}",
                                         tokens[i % len(tokens)], s, stop, readies[i]))
             for i, s in enumerate(streams)]
    async with asyncio.timeout(60):
        await asyncio.gather(*(r.wait() for r in readies))
    tally, lags = HttpTally(), []
    peak = rss_mb(pid)
    async with httpx.AsyncClient(base_url=d.url, timeout=30, limits=httpx.Limits(
            max_connections=HTTP_CLIENTS)) as client:
        first = await _newest_seqs(client, tokens[0])
        gen0, daemon0 = _sched(os.getpid()), _sched(pid)
        began = time.monotonic()
        http = [asyncio.create_task(_http(client, tokens[0], tally, stop, n))
                for n in range(HTTP_CLIENTS)]
        lag = asyncio.create_task(_lag(stop, lags))
        while time.monotonic() - began < DURATION:
            await asyncio.sleep(1.0)
            peak = max(peak, rss_mb(pid))
        stop.set()
        await asyncio.gather(*http, lag)
        wall = time.monotonic() - began
        gen1, daemon1 = _sched(os.getpid()), _sched(pid)
        last = await _newest_seqs(client, tokens[0])
    async with asyncio.timeout(30):
        await asyncio.gather(*tasks)
    figures.extra.update({
        "generator_cpu_pct": round(100 * (gen1[0] - gen0[0]) / wall, 1),
        "generator_cpu_wait_pct": round(100 * (gen1[1] - gen0[1]) / wall, 1),
        "daemon_cpu_pct": round(100 * (daemon1[0] - daemon0[0]) / wall, 1),
        "daemon_cpu_wait_pct": round(100 * (daemon1[1] - daemon0[1]) / wall, 1),
        "generator_loop_lag_p99_ms": round(1000 * _percentile(lags, 99), 1),
        "rss_peak_mb": peak,
    })
    return streams, tally, {p: (first[p], last[p]) for p in PAIRS}, wall


def test_200_streams_and_20_http_clients_for_30_s(tmp_path: Path, figures: Figures) -> None:
    d = LiveDaemon(tmp_path / "home", pairs=PAIRS,
                   env={"KMS_KRAKEN_SNAPSHOT_INTERVAL": str(INTERVAL)})
    try:
        d.start()
        d.login("admin@example.com")
        tokens = [d.login(f"reader{i}@example.com") for i in range(ACCOUNTS)]
        for pair in PAIRS:
            d.wait_snapshots(pair, tokens[0])
        assert d.daemon is not None
        pid = d.daemon.proc.pid
        figures.rss_before_mb = rss_mb(pid)
        streams, tally, window, wall = asyncio.run(_load(d, tokens, figures, pid))
        figures.rss_after_mb = rss_mb(pid)
    finally:
        d.stop()

    figures.requests = sum(tally.statuses.values()) + len(streams)
    figures.errors_5xx = sum(n for s, n in tally.statuses.items() if s >= 500 and s != 503)
    figures.answered_503 = tally.statuses[503]
    received = [len(s.seqs) for s in streams]
    figures.duplicated = sum(s.duplicates for s in streams)
    figures.marked = sum(s.marked for s in streams)
    figures.unmarked = sum(len(s.unmarked) for s in streams)
    lat = tally.latencies
    figures.extra.update({
        "http_requests": len(lat), "http_rps": round(len(lat) / wall, 1),
        "http_p50_ms": round(1000 * _percentile(lat, 50), 1),
        "http_p99_ms": round(1000 * _percentile(lat, 99), 1),
        "http_max_ms": round(1000 * max(lat), 1),
        "http_p50_ms_by_route": {p: round(1000 * _percentile(v, 50), 1)
                                 for p, v in sorted(tally.by_path.items())},
        "ws_snapshots": sum(received), "ws_min_per_client": min(received),
        "ws_max_per_client": max(received),
    })
    x = figures.extra
    figures.note = (
        f"{WS_CLIENTS} streams over {len(PAIRS)} pairs ({ACCOUNTS} accounts), {HTTP_CLIENTS} "
        f"HTTP clients, {wall:.0f} s: {x['http_requests']} requests ({x['http_rps']}/s), "
        f"p50 {x['http_p50_ms']} ms, p99 {x['http_p99_ms']} ms, max {x['http_max_ms']} ms; "
        f"{x['ws_snapshots']} snapshots streamed ({x['ws_min_per_client']}-"
        f"{x['ws_max_per_client']} a client); RSS peak {x['rss_peak_mb']} MB; CPU (% of one "
        f"core, ran / waited for a CPU): daemon {x['daemon_cpu_pct']} / "
        f"{x['daemon_cpu_wait_pct']}, load generator {x['generator_cpu_pct']} / "
        f"{x['generator_cpu_wait_pct']} (its loop lag p99 {x['generator_loop_lag_p99_ms']} ms)")

    assert figures.errors_5xx == 0, tally.errors
    assert tally.transport_errors == 0, tally.errors
    assert set(tally.statuses) == {200}, tally.errors
    early = [(s.pair, s.close_code) for s in streams if s.closed_early]
    assert not early, f"streams closed before the end: {early[:10]}"
    assert figures.duplicated == 0
    assert figures.unmarked == 0, [s.unmarked for s in streams if s.unmarked][:5]
    # continuous: each stream covers the whole run, and (holes being all marked, above)
    # received every snapshot its pair published in it
    for pair, (first, last) in window.items():
        assert last - first >= 0.8 * wall / INTERVAL, (pair, first, last, wall)
    short = [(s.pair, s.seqs[0], s.seqs[-1], window[s.pair]) for s in streams
             if not s.seqs or s.seqs[0] > window[s.pair][0] + IN_FLIGHT
             or s.seqs[-1] < window[s.pair][1] - IN_FLIGHT]
    assert not short, f"streams that missed the start or the end of the run: {short[:10]}"
    assert figures.rss_before_mb is not None and figures.rss_after_mb is not None
    assert x["rss_peak_mb"] - figures.rss_before_mb <= RSS_GROWTH_MB, figures.note
    assert figures.rss_after_mb - figures.rss_before_mb <= RSS_GROWTH_MB, figures.note

