"""The gateway on the server stack: MariaDB users, Redis history, the Kafka bus (a tansu
broker), and what it answers when Redis goes away."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Broker, free_port, port_open, skip_or_fail
from gateway_support import EMAIL, PASSWORD, login, settings_for, stack, wait_snapshots
from krakenstream.core.snapshot import Snapshot
from krakenstream.sim.server import SimServer

pytestmark = pytest.mark.integration


async def test_walkthrough_on_mariadb_redis_kafka(
    kms_home: Path, mysql_url: str, redis_prefix: str, kafka_broker: Broker
) -> None:
    async with SimServer(pairs=["ETH/USD"], seed=1) as sim:
        settings = settings_for(
            kms_home, sim.url,
            KMS_BUS_BACKEND="kafka",
            KMS_KAFKA_BOOTSTRAP=kafka_broker.bootstrap,
            KMS_KAFKA_SESSION_TIMEOUT_MS="6000",
            KMS_KAFKA_TOPIC=f"kms-gw-{redis_prefix.split(':')[1]}",
            KMS_STORE_BACKEND="redis",
            KMS_REDIS_PREFIX=redis_prefix,
            KMS_USERS_BACKEND="mysql",
            KMS_MYSQL_URL=mysql_url,
        )
        async with stack(settings) as gw:
            c = gw.client
            r = await c.post("/api/users/register", json={"email": EMAIL, "password": PASSWORD})
            assert r.status_code == 201
            r = await c.post("/api/users/register", json={"email": EMAIL, "password": PASSWORD})
            assert r.status_code == 409
            r = await c.post("/api/users/login", json={"email": EMAIL, "password": PASSWORD})
            assert r.status_code == 200
            gw.token = r.json()["token"]
            assert (await c.get("/api/analysis/history/ETH-USD")).status_code == 401

            await wait_snapshots(gw, n=3, within=30)
            r = await c.get("/api/analysis/history/ETH%2FUSD?format=ndjson", headers=gw.auth)
            assert r.status_code == 200
            snaps = [Snapshot.from_json(line) for line in r.text.splitlines()]
            assert len(snaps) >= 3 and all(s.pair == "ETH/USD" for s in snaps)
            r = await c.get("/api/analysis/latest/ETH-USD", headers=gw.auth)
            assert r.status_code == 200
            health = (await c.get("/health")).json()
            assert health["bus"]["backend"] == "kafka" and health["bus"]["healthy"] is True
            assert health["store"] == {"backend": "redis", "healthy": True}
            assert health["users"] == {"backend": "mysql", "healthy": True}


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own on a free port, so it can be stopped."""
    binary = shutil.which("redis-server")
    if binary is None:
        skip_or_fail("redis-server is not installed")
        raise AssertionError  # unreachable
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if port_open("127.0.0.1", port, 0.1):
                break
            if proc.poll() is not None:
                skip_or_fail(f"redis-server exited with {proc.returncode}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=5)


async def test_redis_down_is_503(
    kms_home: Path, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, proc = private_redis
    settings = settings_for(kms_home, KMS_STORE_BACKEND="redis", KMS_REDIS_URL=url)
    async with stack(settings, roles=("gateway",)) as gw:
        gw.token = await login(gw.client)
        r = await gw.client.get("/api/analysis/latest/ETH-USD", headers=gw.auth)
        assert r.status_code == 404  # up, but nothing stored yet
        assert (await gw.client.get("/health")).json()["store"]["healthy"] is True

        proc.terminate()
        await asyncio.to_thread(proc.wait, 5)
        for url_path in ("/api/analysis/latest/ETH-USD", "/api/analysis/history/ETH-USD"):
            r = await gw.client.get(url_path, headers=gw.auth)
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "unavailable" and "Redis" in r.json()["error"]
        health = (await gw.client.get("/health")).json()
        assert health["status"] == "degraded" and health["store"]["healthy"] is False
        # the users backend (SQLite) is unaffected: logins still work
        await login(gw.client, register=False)
