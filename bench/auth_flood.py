"""Auth flood benchmark: how long a legitimate login takes while N registrations arrive at once.

Setup: a real daemon (``python -m krakenstream daemon run --roles gateway``) in a temporary
``KMS_HOME`` on a free loopback port, bcrypt at the default cost 12, one account registered
beforehand. Then, at the same moment, N concurrent ``POST /api/users/register`` (fresh emails)
and one ``POST /api/users/login`` of the existing account; the login's latency is measured
from its send to its answer, with the statuses of the registrations counted.

The per-address registration limit would refuse most of a flood sent from one address (which
is the point of it); to measure the hash queue a flood spread over many addresses meets, the
run raises ``auth.registration_max`` out of the way (``--keep-limit`` to leave it on).

Before/after: run it with ``PYTHONPATH=<a checkout's src>`` to measure that checkout's code
with the same script (the daemon subprocess inherits it).

Run: ``.venv/bin/python bench/auth_flood.py [--registrations 30 100] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daemon(home: Path, port: int, keep_limit: bool, cost: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KMS_HOME": str(home), "KMS_GATEWAY_PORT": str(port),
           "KMS_AUTH_BCRYPT_COST": str(cost), "KMS_KRAKEN_URL": "ws://127.0.0.1:9/v2"}
    from krakenstream.config import known_keys

    if not keep_limit and "auth.registration_max" in known_keys():  # absent from older code
        env["KMS_AUTH_REGISTRATION_MAX"] = "1000000"
    log = (home / "bench-daemon.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "krakenstream", "daemon", "run", "--roles", "gateway"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the daemon did not start; see {home / 'bench-daemon.out'}")


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def flood(base: str, n: int, round_: int) -> tuple[float, int, dict[int, int]]:
    """N registrations and one login at once: (login seconds, login status, statuses)."""
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        async def register(i: int) -> int:
            r = await client.post("/api/users/register", json={
                "email": f"bot{round_}-{i}@example.com", "password": PASSWORD})
            return r.status_code

        async def login() -> tuple[float, int]:
            await asyncio.sleep(0.05)  # the flood is in flight first
            started = time.perf_counter()
            r = await client.post("/api/users/login", json={
                "email": "member@example.com", "password": PASSWORD})
            return time.perf_counter() - started, r.status_code

        results = await asyncio.gather(login(), *(register(i) for i in range(n)))
    (seconds, status), statuses = results[0], results[1:]
    return seconds, status, dict(collections.Counter(statuses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--registrations", type=int, nargs="+", default=[30, 100])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cost", type=int, default=12)
    parser.add_argument("--keep-limit", action="store_true")
    args = parser.parse_args()
    import krakenstream

    print(f"code: {Path(krakenstream.__file__).parent}  cores: {os.cpu_count()}  "
          f"bcrypt cost: {args.cost}  per-address limit: {'on' if args.keep_limit else 'off'}")
    with tempfile.TemporaryDirectory(prefix="kms-auth-flood-") as tmp:
        home = Path(tmp)
        port = free_port()
        proc = start_daemon(home, port, args.keep_limit, args.cost)
        base = f"http://127.0.0.1:{port}"
        try:
            r = httpx.post(f"{base}/api/users/register", timeout=30,
                           json={"email": "member@example.com", "password": PASSWORD})
            assert r.status_code == 201, r.text
            quiet = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                r = httpx.post(f"{base}/api/users/login", timeout=30,
                               json={"email": "member@example.com", "password": PASSWORD})
                quiet.append(time.perf_counter() - started)
            print(f"login alone: median {statistics.median(quiet):.2f} s")
            round_ = 0
            for n in args.registrations:
                times = []
                for _ in range(args.rounds):
                    round_ += 1
                    seconds, status, statuses = asyncio.run(flood(base, n, round_))
                    times.append(seconds)
                    print(f"  N={n}: login {seconds:.2f} s (status {status}); "
                          f"registrations {dict(sorted(statuses.items()))}")
                print(f"N={n} registrations: login median {statistics.median(times):.2f} s, "
                      f"max {max(times):.2f} s")
        finally:
            stop_daemon(proc)


if __name__ == "__main__":
    main()
