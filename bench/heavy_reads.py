"""Memory of a gateway under concurrent heavy reads: summaries or exports of a full history.

A gateway-only daemon (``kms daemon run --roles gateway``) over a SQLite history written
beforehand (``--rows`` snapshots of one pair at ``--depth`` levels a side), then ``--clients``
requests at once; the daemon's resident memory is sampled every 20 ms. Prints the requests'
statuses, the time they took, the daemon's RSS before, at its peak (``VmHWM``) and two seconds
after (what it gave back).

    .venv/bin/python bench/heavy_reads.py --kind summary --clients 20
    .venv/bin/python bench/heavy_reads.py --kind summary --clients 20 \
        --set KMS_GATEWAY_MAX_SUMMARIES=20        # all 20 at once, no 503
    .venv/bin/python bench/heavy_reads.py --kind export --depth 1000 --rows 2000 --clients 8

Everything runs on loopback in a throwaway ``KMS_HOME``; ``PYTHONPATH`` passes through, so
another checkout's ``src`` can be measured the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from krakenstream.core.snapshot import Snapshot
from krakenstream.store.sqlite import SQLiteHistoryStore

PAIR = "BTC/USD"
T0 = 1_764_000_000_000
PASSWORD = "correct horse battery"


def snapshot(i: int, depth: int) -> Snapshot:
    """The i-th one-second snapshot of a book ``depth`` levels a side."""
    bid = 9_000_000 + (i % 97) * 3
    return Snapshot(
        pair=PAIR, ts=T0 + i * 1000, exchange_ts=None, seq=i + 1, price_precision=1,
        qty_precision=8,
        bids=tuple((bid - 2 * k, 10_000_000 + 7 * k + i) for k in range(depth)),
        asks=tuple((bid + 1 + 2 * k, 9_000_000 + 5 * k + i) for k in range(depth)),
        checksum=i)


async def prefill(path: Path, n: int, depth: int) -> None:
    store = SQLiteHistoryStore(path, history_limit=max(n, 10_000))
    await store.open()
    try:
        for i in range(0, n, 200):
            await store.add([snapshot(j, depth) for j in range(i, min(n, i + 200))])
    finally:
        await store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.02)


async def fire(base: str, token: str, kind: str, clients: int, rows: int) -> list[int]:
    path = ("/api/analysis/summary/BTC-USD" if kind == "summary"
            else f"/api/analysis/history/BTC-USD?format=csv&limit={rows}")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        async def one() -> int:
            async with client.stream("GET", path, headers=headers) as r:
                async for _ in r.aiter_bytes():
                    pass
                return r.status_code

        return list(await asyncio.gather(*(one() for _ in range(clients))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=("summary", "export"), default="summary")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--set", action="append", default=[], metavar="KMS_X=V",
                    help="a setting for the daemon, e.g. KMS_GATEWAY_MAX_SUMMARIES=20")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="kms-heavy-"))
    asyncio.run(prefill(home / "history.sqlite3", args.rows, args.depth))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_")}
    env.update(KMS_HOME=str(home), KMS_GATEWAY_PORT=str(port), KMS_AUTH_BCRYPT_COST="4",
               KMS_STORE_HISTORY_LIMIT=str(max(args.rows, 10_000)),
               KMS_DAEMON_LOG_LEVEL="warning")
    env.update(item.split("=", 1) for item in args.set)
    proc = subprocess.Popen([sys.executable, "-m", "krakenstream", "daemon", "run", "--roles",
                             "gateway"], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(home / "daemon.log", "wb"))  # noqa: SIM115
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"the daemon did not start; see {home / 'daemon.log'}")
            time.sleep(0.1)
        httpx.post(base + "/api/users/register", json={"email": "b@example.com",
                                                       "password": PASSWORD})
        token = httpx.post(base + "/api/users/login", json={
            "email": "b@example.com", "password": PASSWORD}).json()["token"]
        before = rss_kb(proc.pid)
        sampler = Sampler(proc.pid)
        sampler.start()
        started = time.monotonic()
        statuses = asyncio.run(fire(base, token, args.kind, args.clients, args.rows))
        took = time.monotonic() - started
        time.sleep(2.0)
        sampler.running = False
        after = rss_kb(proc.pid)
        counts = {s: statuses.count(s) for s in sorted(set(statuses))}
        print(f"kind={args.kind} clients={args.clients} rows={args.rows} depth={args.depth} "
              f"statuses={counts} took={took:.1f}s rss_before={before / 1024:.0f}MB "
              f"rss_peak={max(sampler.peak, rss_kb(proc.pid, 'VmHWM')) / 1024:.0f}MB "
              f"rss_after={after / 1024:.0f}MB")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
