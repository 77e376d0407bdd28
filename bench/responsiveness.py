"""Benchmark: how long the event loop pauses while the slow work runs off it.

The unit tests prove by order that bcrypt and SQLite never run on the loop (other coroutines
turn while they work; the history read hands out one chunk between two turns). The figures
they used to assert, which swing with the machine's load, are printed here instead:

- **store**: the loop's longest pause (a ticker sleeping 5 ms) while a SQLite history store
  writes 10,000 snapshots of one pair and reads them back;
- **hash**: the loop's longest pause while one bcrypt hash and one check run at cost 10,
  beside the time they take (on the loop, a pause would span a whole hash);
- **logins**: the loop's longest pause and the median tick while four logins hash at cost 11
  at once, beside one login's time;
- **unknown user**: the median login time of a wrong password and of an email with no
  account at cost 6, and their ratio (the dummy hash keeps it near 1: an unknown email is
  not answered faster).

    .venv/bin/python bench/responsiveness.py [--rounds 5]

Each figure is the median over ``--rounds`` runs (the worst run printed beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from krakenstream.config import load_settings
from krakenstream.core.snapshot import Snapshot
from krakenstream.daemon.wiring import open_auth
from krakenstream.errors import AuthError
from krakenstream.store import SQLiteHistoryStore
from krakenstream.users.passwords import PasswordHasher

T0 = 1_700_000_000_000
PASSWORD = "correct horse battery staple"


def series(pair: str, n: int) -> list[Snapshot]:
    """``n`` one-second ten-level snapshots whose levels move, as the store tests' series."""
    out = []
    for i in range(n):
        ts = T0 + i * 1000
        mid = 30_000_00 + i % 5_000
        out.append(Snapshot(
            pair=pair, ts=ts, exchange_ts="2023-07-30T15:30:49.008834Z", seq=i,
            price_precision=1, qty_precision=8,
            bids=tuple((mid - 1 - k, 10_000_000 + 7_919 * ((i + k) % 997)) for k in range(10)),
            asks=tuple((mid + 1 + k, 20_000_000 + 104_729 * ((i + k) % 991))
                       for k in range(10)),
            checksum=(ts * 2_654_435_761) % 2**32,
        ))
    return out


async def longest_pause(work: Callable[[], Awaitable[object]]) -> tuple[float, float, float]:
    """(the loop's longest pause, the median tick, the work's seconds) while ``work`` runs;
    a ticker asks for 5 ms sleeps, a pause is how long one really took."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    try:
        await work()
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        await tick
    return max(gaps, default=0.0), statistics.median(gaps or [0.0]), elapsed


async def store_pause(folder: Path) -> tuple[float, float, float]:
    store = SQLiteHistoryStore(folder / "h.sqlite3")
    await store.open()
    snaps = series("BTC/USD", 10_000)

    async def work() -> None:
        await store.add(snaps)
        async for _ in store.history("BTC/USD"):
            pass

    try:
        return await longest_pause(work)
    finally:
        await store.close()


async def hash_pause() -> tuple[float, float, float]:
    hasher = PasswordHasher(10)

    async def work() -> None:
        hashed = await hasher.hash(PASSWORD)
        assert await hasher.verify(PASSWORD, hashed)

    return await longest_pause(work)


async def login_pause(folder: Path) -> tuple[float, float, float, float]:
    settings = load_settings(env={"KMS_HOME": str(folder)},
                             overrides={"auth.bcrypt_cost": 11})
    service = await open_auth(settings)
    try:
        await service.register("jane@example.com", PASSWORD)
        started = time.perf_counter()
        await service.login("jane@example.com", PASSWORD, client="b")
        one = time.perf_counter() - started

        async def work() -> None:
            await asyncio.gather(*(service.login("jane@example.com", PASSWORD, client="b")
                                   for _ in range(4)))

        return (*await longest_pause(work), one)
    finally:
        await service.close()


async def unknown_user(folder: Path) -> tuple[float, float]:
    settings = load_settings(env={"KMS_HOME": str(folder)}, overrides={
        "auth.bcrypt_cost": 6, "auth.login_max_failures": 1000})
    service = await open_auth(settings)
    try:
        await service.register("kim@example.com", PASSWORD)

        async def timed(email: str) -> float:
            started = time.perf_counter()
            try:
                await service.login(email, "wrong password", client="b")
            except AuthError:
                pass
            return time.perf_counter() - started

        wrong, unknown = [], []
        for i in range(12):
            wrong.append(await timed("kim@example.com"))
            unknown.append(await timed(f"nobody{i}@example.com"))
        return statistics.median(wrong), statistics.median(unknown)
    finally:
        await service.close()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    stores, hashes, logins, unknowns = [], [], [], []
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            stores.append(await store_pause(folder / "store"))
            hashes.append(await hash_pause())
            logins.append(await login_pause(folder / f"login{i}"))
            unknowns.append(await unknown_user(folder / f"unknown{i}"))

    def med(rows: list[tuple[float, ...]], k: int) -> float:
        return statistics.median(r[k] for r in rows)

    def worst(rows: list[tuple[float, ...]], k: int) -> float:
        return max(r[k] for r in rows)

    print(f"rounds: {args.rounds} (median, worst round in brackets)")
    print(f"store   10,000 snapshots written and read: longest loop pause "
          f"{ms(med(stores, 0))} [{ms(worst(stores, 0))}], the work {ms(med(stores, 2))}")
    print(f"hash    bcrypt cost 10, hash + check: longest loop pause {ms(med(hashes, 0))} "
          f"[{ms(worst(hashes, 0))}], the hashing {ms(med(hashes, 2))}")
    print(f"logins  4 at once at cost 11: longest loop pause {ms(med(logins, 0))} "
          f"[{ms(worst(logins, 0))}], median tick {ms(med(logins, 1))} (asked: 5.0 ms), "
          f"one login {ms(med(logins, 3))}, the four {ms(med(logins, 2))}")
    ratios = [u / w for w, u in unknowns]
    print(f"unknown user at cost 6: wrong password {ms(med(unknowns, 0))}, no such account "
          f"{ms(med(unknowns, 1))}, ratio {statistics.median(ratios):.2f} "
          f"[{min(ratios):.2f}..{max(ratios):.2f}]")


if __name__ == "__main__":
    asyncio.run(main())
