"""Gateway benchmark: requests/s and p99 of ``latest`` and of a 10,000-snapshot CSV history,
against a minimal Starlette app doing only the token check, and ``latest`` under a login load.

Setup (embedded stack in a temporary ``KMS_HOME``): 10,000 depth-10 snapshots of ETH/USD in
the SQLite history, one registered user (bcrypt cost 12) and a token. Two servers, each in a
process of its own, both on uvicorn with the same options (h11, asyncio loop, no access log):

* ``ours``: the real gateway (``create_app`` over ``build_services(settings, ["gateway"])``),
  request logging on at INFO into a file, as the daemon runs it;
* ``minimal``: a bare Starlette route that checks the same bearer token (PyJWT HS256 decode
  with the same secret, issuer and audience) and returns a fixed JSON body of exactly the
  size of our ``latest`` answer: the floor any gateway on this stack could reach.

The load generator is ``wrk`` (bounded: a fixed number of connections for a fixed time) in
another process; without wrk, a small httpx load generator is used instead (slower, so the
absolute figures drop, the ratio less so). Phases: ``latest`` on both apps; the CSV export;
then ``latest`` again while 4 connections log in continuously (bcrypt cost 12, which runs in
worker threads, never on the event loop).

``--calls`` measures instead what a shared, loaded machine cannot blur: the Python function
calls one ``latest`` request makes through the app in-process (ASGI, no socket, cProfile over
1,000 requests after a warm-up, the latest cache held for the whole count so no refresh falls
in it), the same on every run of the same code. It is how a change to the gateway's structure
is checked for cost (issue 11: 630 calls a request before the package, 636 after).

Run: ``.venv/bin/python bench/gateway.py [--quick] [--duration S] [--connections N] [--calls]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from krakenstream.config import Settings, load_settings
from krakenstream.core.snapshot import Snapshot

PAIR = "ETH/USD"
HISTORY = 10_000
EMAIL = "bench@example.com"
PASSWORD = "correct horse battery staple"
LATEST = "/api/analysis/latest/ETH-USD"
CSV = "/api/analysis/history/ETH-USD?format=csv"
LOGIN = "/api/users/login"


def settings_for(home: Path, cost: int = 12) -> Settings:
    return load_settings(env={"KMS_HOME": str(home), "KMS_AUTH_BCRYPT_COST": str(cost),
                              "KMS_DAEMON_ROLES": "gateway", "KMS_KRAKEN_PAIRS": PAIR})


def snapshot(ts: int, seq: int) -> Snapshot:
    """A realistic depth-10 ETH/USD snapshot, levels drifting with time."""
    mid = 3_500_00 + (ts // 1000) % 2_000
    bids = tuple((mid - 1 - i * 3, 50_000_000 + (seq * 7_919 + i * 104_729) % 900_000_000)
                 for i in range(10))
    asks = tuple((mid + 1 + i * 3, 40_000_000 + (seq * 6_007 + i * 130_363) % 900_000_000)
                 for i in range(10))
    return Snapshot(pair=PAIR, ts=ts, exchange_ts="2026-11-25T17:00:00.123456Z", seq=seq,
                    price_precision=2, qty_precision=8, bids=bids, asks=asks,
                    checksum=(seq * 2_654_435_761) % 2**32)


async def prepare(home: Path) -> str:
    """Fill the history, register the user; the token of a login."""
    from krakenstream.daemon.wiring import open_auth, open_store

    settings = settings_for(home)
    store = open_store(settings)
    await store.open()
    try:
        t0 = (int(time.time()) - HISTORY) * 1000
        for start in range(0, HISTORY, 1000):
            await store.add([snapshot(t0 + i * 1000, i + 1) for i in range(start, start + 1000)])
        assert await store.count(PAIR) == HISTORY
    finally:
        await store.close()
    auth = await open_auth(settings)
    try:
        await auth.register(EMAIL, PASSWORD)
        issued = await auth.login(EMAIL, PASSWORD, "127.0.0.1")
    finally:
        await auth.close()
    return issued.token


# -- the two servers (each run with --serve in a process of its own) ---------------------------


def uvicorn_config(app: Any, port: int) -> Any:
    import uvicorn

    return uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                          lifespan="on", server_header=False)


async def serve_ours(home: Path, port: int) -> None:
    from krakenstream.daemon.gateway import make_server
    from krakenstream.daemon.services import build_services

    logging.basicConfig(filename=str(home / "gateway.log"), level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    services = await build_services(settings_for(home), ["gateway"])
    server = make_server(services, host="127.0.0.1", port=port)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: setattr(server, "should_exit", True))
    try:
        await server.serve()
    finally:
        await services.close()


async def serve_minimal(home: Path, port: int, body: bytes) -> None:
    import jwt
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from krakenstream.daemon.wiring import secret as load_secret

    settings = settings_for(home)
    secret = load_secret(settings)

    async def latest(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise jwt.InvalidTokenError("no bearer token")
            jwt.decode(token, secret, algorithms=["HS256"], audience=settings.auth.audience,
                       issuer=settings.auth.issuer)
        except jwt.InvalidTokenError:
            return Response(b'{"error":"unauthorized"}', status_code=401,
                            media_type="application/json")
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/latest", latest)])
    server = uvicorn.Server(uvicorn_config(app, port))
    await server.serve()


# -- calls per request (--calls) ---------------------------------------------------------------


async def count_calls(home: Path, token: str, path: str = LATEST, n: int = 1000) -> float:
    """Python calls per request of ``path`` through the app in-process (see the docstring)."""
    import cProfile
    import pstats

    from krakenstream.daemon.gateway import create_app
    from krakenstream.daemon.services import build_services

    logging.basicConfig(filename=str(home / "gateway.log"), level=logging.INFO)
    services = await build_services(settings_for(home), ["gateway"])
    app = create_app(services)
    headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())]
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    async def request() -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": b"", "root_path": "", "headers": headers,
                 "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 3000), "state": {}}
        await app(scope, receive, send)

    app.state.gateway.latest.ttl = 3600.0  # no refresh while counting: the cached path only
    try:
        async with app.router.lifespan_context(app):
            for _ in range(n // 2):  # warm-up: caches filled, first-use imports done
                await request()
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(n):
                await request()
            profile.disable()
    finally:
        await services.close()
    assert statuses == {200}, statuses
    return float(pstats.Stats(profile).total_calls) / n  # type: ignore[attr-defined]


# -- load generation ---------------------------------------------------------------------------


@dataclass
class Load:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    tool: str


def _ms(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk_command(url: str, token: str | None, connections: int, seconds: float,
                script: Path | None = None) -> list[str]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
           "--timeout", "10s"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    if script is not None:
        cmd += ["-s", str(script)]
    return [*cmd, url]


def parse_wrk(out: str) -> Load:
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    total = re.search(r"([0-9]+) requests in ([0-9.]+)(ms|s|m)", out)
    assert total is not None, out
    secs = _ms(total.group(2) + total.group(3)) / 1000
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    mx = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out)
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+([0-9]+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), "
                     r"timeout ([0-9]+)", out)
    if sock:
        errors += sum(int(x) for x in sock.groups())
    return Load(int(total.group(1)), secs, rps, p50, p99, _ms(mx.group(1)) if mx else p99,
                errors, "wrk")


async def httpx_load(url: str, token: str | None, connections: int, seconds: float,
                     method: str = "GET", body: bytes | None = None) -> Load:
    """Fallback load generator: ``connections`` workers for ``seconds`` (bounded both ways)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await client.request(method, url, headers=headers, content=body)
                await r.aread()
                latencies.append(time.perf_counter() - t0)
                if r.status_code >= 300:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        took = time.perf_counter() - began
    latencies.sort()
    n = len(latencies)
    return Load(n, took, n / took, latencies[n // 2] * 1000,
                latencies[min(n - 1, int(n * 0.99))] * 1000, latencies[-1] * 1000, errors,
                "httpx")


def run_load(url: str, token: str | None, connections: int, seconds: float,
             login_body: bytes | None = None, tmp: Path | None = None) -> Load:
    if shutil.which("wrk"):
        script = None
        if login_body is not None:
            assert tmp is not None
            script = tmp / "login.lua"
            script.write_text(
                'wrk.method = "POST"\n'
                f"wrk.body = {json.dumps(login_body.decode())}\n"
                'wrk.headers["Content-Type"] = "application/json"\n')
        out = subprocess.run(wrk_command(url, token, connections, seconds, script),
                             capture_output=True, text=True, check=True).stdout
        return parse_wrk(out)
    return asyncio.run(httpx_load(url, token, connections, seconds,
                                  "POST" if login_body else "GET", login_body))


# -- orchestration -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, __file__, *args], start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"server {args} exited with {proc.returncode}") from None
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"server {args} did not listen within 30 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def row(name: str, load: Load) -> str:
    return (f"| {name} | {load.rps:,.0f} | {load.p50_ms:.2f} | {load.p99_ms:.2f} | "
            f"{load.max_ms:.1f} | {load.requests:,} | {load.errors} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", choices=["ours", "minimal"], help=argparse.SUPPRESS)
    ap.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--body-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    ap.add_argument("--connections", type=int, default=32, help="concurrent connections")
    ap.add_argument("--quick", action="store_true", help="3 s phases")
    ap.add_argument("--calls", action="store_true",
                    help="only count Python calls per latest request, in-process")
    args = ap.parse_args()

    if args.serve == "ours":
        asyncio.run(serve_ours(args.home, args.port))
        return
    if args.serve == "minimal":
        asyncio.run(serve_minimal(args.home, args.port, args.body_file.read_bytes()))
        return

    if args.calls:
        with tempfile.TemporaryDirectory(prefix="kms-bench-gw-") as tmp_s:
            home = Path(tmp_s)
            token = asyncio.run(prepare(home))
            calls = asyncio.run(count_calls(home, token))
        print(f"Python calls per `latest` request, in-process (cProfile, 1,000 requests): "
              f"{calls:.0f}")
        return

    seconds = 3.0 if args.quick else args.duration
    conns = args.connections
    with tempfile.TemporaryDirectory(prefix="kms-bench-gw-") as tmp_s:
        tmp = Path(tmp_s)
        home = tmp / "home"
        home.mkdir()
        print(f"preparing: {HISTORY:,} snapshots of {PAIR}, one user (bcrypt cost 12)...",
              flush=True)
        token = asyncio.run(prepare(home))
        ours_port, min_port = free_port(), free_port()
        ours = start(["--serve", "ours", "--home", str(home), "--port", str(ours_port)],
                     ours_port)
        minimal: subprocess.Popen[bytes] | None = None
        try:
            base = f"http://127.0.0.1:{ours_port}"
            body = httpx.get(base + LATEST, headers={"Authorization": f"Bearer {token}"}).content
            csv_body = httpx.get(base + CSV, headers={"Authorization": f"Bearer {token}"},
                                 timeout=30).content
            assert csv_body.count(b"\n") == HISTORY + 1, csv_body.count(b"\n")
            (tmp / "body.json").write_bytes(body)
            minimal = start(["--serve", "minimal", "--home", str(home), "--port", str(min_port),
                             "--body-file", str(tmp / "body.json")], min_port)
            mbase = f"http://127.0.0.1:{min_port}"
            check = httpx.get(mbase + "/latest", headers={"Authorization": f"Bearer {token}"})
            assert check.status_code == 200 and len(check.content) == len(body)
            tool = "wrk" if shutil.which("wrk") else "httpx"
            print(f"load: {tool}, {conns} connections, {seconds:g} s per phase; "
                  f"latest body {len(body)} bytes, CSV body {len(csv_body):,} bytes", flush=True)

            run_load(mbase + "/latest", token, conns, 1, tmp=tmp)  # warm-up
            run_load(base + LATEST, token, conns, 1, tmp=tmp)
            res: dict[str, Load] = {}
            res["minimal"] = run_load(mbase + "/latest", token, conns, seconds, tmp=tmp)
            res["latest"] = run_load(base + LATEST, token, conns, seconds, tmp=tmp)
            res["csv"] = run_load(base + CSV, token, 2, seconds, tmp=tmp)

            login_body = json.dumps({"email": EMAIL, "password": PASSWORD}).encode()
            logins: dict[str, Load] = {}

            def login_load() -> None:
                logins["l"] = run_load(base + LOGIN, None, 4, seconds, login_body, tmp)

            import threading

            t = threading.Thread(target=login_load)
            t.start()
            time.sleep(0.5)  # the login load is under way
            res["latest+logins"] = run_load(base + LATEST, token, conns, seconds - 1, tmp=tmp)
            t.join()
            res["logins"] = logins["l"]
        finally:
            if minimal is not None:
                stop(minimal)
            stop(ours)

    print()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; load generator: {tool}")
    print("| phase | requests/s | p50 ms | p99 ms | max ms | requests | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(row("minimal Starlette app, token check + same-size body", res["minimal"]))
    print(row("gateway `latest`", res["latest"]))
    print(row(f"gateway CSV history, {HISTORY:,} snapshots (2 connections)", res["csv"]))
    print(row("gateway `latest` while 4 connections log in", res["latest+logins"]))
    print(row("gateway logins (bcrypt cost 12), 4 connections", res["logins"]))
    ratio = res["latest"].rps / res["minimal"].rps
    print()
    print(f"latest / minimal requests/s: {ratio:.2f} (target >= 0.6)")
    print(f"latest p99 without / with concurrent logins: {res['latest'].p99_ms:.2f} ms / "
          f"{res['latest+logins'].p99_ms:.2f} ms (max {res['latest+logins'].max_ms:.1f} ms; "
          f"one bcrypt-12 login alone takes ~{res['logins'].p50_ms:.0f} ms at p50 under load)")


if __name__ == "__main__":
    main()
