"""Split roles for real: orderbook, analysis and gateway as separate daemon processes on
MariaDB + Redis + a Kafka-protocol broker, with the simulator as the exchange.

The walk-through first (register, log in, history refused without a token, served with one);
then the orderbook is split in two processes by ``kraken.shard`` and a second analysis process
joins the consumer group; then one analysis process is killed and the other takes over its
partitions. History must stay complete — every step one interval after the previous one, or
marked ``gap_before`` — with no snapshot stored twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import Broker, free_port, port_open
from reliability.support import history, wait_for

KMS = [sys.executable, "-m", "krakenstream"]
PAIRS = ["ETH/USD", "BTC/USD", "SOL/USD", "XRP/USD", "ADA/USD", "LTC/USD"]
INTERVAL_MS = 500
SECRET = "split-roles-test-secret-0123456789abcdef0123456789"

pytestmark = pytest.mark.integration


class Procs:
    """The processes a test starts, all stopped at the end whatever happens."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        home = self.root / name
        home.mkdir(exist_ok=True)
        log = (home / "out.log").open("wb")
        proc = subprocess.Popen([*KMS, *args], env={**env, "KMS_HOME": str(home)},
                                stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.root / name / "out.log").read_text(errors="replace")

    def stop(self, name: str, sig: int = signal.SIGTERM) -> int:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        return proc.wait(timeout=30)

    def stop_all(self) -> None:
        for name in list(self.procs):
            try:
                self.stop(name)
            except subprocess.TimeoutExpired:
                self.procs.get(name, subprocess.Popen(["true"])).kill()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.stop_all()


def check_complete(rows: list[dict]) -> None:  # type: ignore[type-arg]
    ts = [r["ts"] for r in rows]
    assert len(ts) == len(set(ts)), "a snapshot stored twice"
    assert ts == sorted(ts)
    for a, b in zip(rows, rows[1:], strict=False):
        assert b["ts"] - a["ts"] == INTERVAL_MS or b["gap_before"], (
            f"{b['pair']}: {a['ts']} → {b['ts']} is a hole that does not say so")


def test_split_roles(kafka_broker: Broker, redis_prefix: str, redis_server_url: str,
                     mysql_url: str, procs: Procs) -> None:
    # (procs last: torn down first, so the daemons stop before the services they use)
    sim_port, gw_port = free_port(), free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("KMS_")}
    env = {
        **base,
        "KMS_KRAKEN_URL": f"ws://127.0.0.1:{sim_port}/v2",
        "KMS_KRAKEN_PAIRS": ",".join(PAIRS),
        "KMS_KRAKEN_SNAPSHOT_INTERVAL": str(INTERVAL_MS / 1000),
        "KMS_BUS_BACKEND": "kafka",
        "KMS_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
        "KMS_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "KMS_KAFKA_GROUP": "kms-split",
        "KMS_STORE_BACKEND": "redis",
        "KMS_REDIS_URL": redis_server_url,
        "KMS_REDIS_PREFIX": redis_prefix,
        "KMS_USERS_BACKEND": "mysql",
        "KMS_MYSQL_URL": mysql_url,
        "KMS_AUTH_SECRET": SECRET,
        "KMS_AUTH_BCRYPT_COST": "4",
        "KMS_GATEWAY_PORT": str(gw_port),
    }
    procs.start("sim", ["sim", "--port", str(sim_port), "--pairs", ",".join(PAIRS),
                        "--seed", "21"], base)
    wait_for(lambda: port_open("127.0.0.1", sim_port, 0.2), 15, "the simulator")
    procs.start("orderbook", ["daemon", "run", "--roles", "orderbook"], env)
    procs.start("analysis-1", ["daemon", "run", "--roles", "analysis"], env)
    procs.start("gateway", ["daemon", "run", "--roles", "gateway"], env)

    client = httpx.Client(base_url=f"http://127.0.0.1:{gw_port}", timeout=10)

    def up() -> bool:
        try:
            return client.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 30, "the gateway's /health")

    # -- the walk-through --------------------------------------------------------------
    r = client.post("/api/users/register", json={"email": "split@example.com",
                                                 "password": "correct horse"})
    assert r.status_code == 201, r.text
    r = client.post("/api/users/login", json={"email": "split@example.com",
                                              "password": "correct horse"})
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    r = client.get("/api/analysis/history/ETH%2FUSD")
    assert r.status_code == 401 and r.json()["error"]
    wait_for(lambda: all(len(history(client, p, token)) >= 3 for p in PAIRS), 60,
         "history for every pair through Kafka and Redis")
    r = client.get("/api/analysis/latest/ETH-USD", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["pair"] == "ETH/USD"

    # -- scale out: two orderbooks by shard, a second analysis in the group --------------
    assert procs.stop("orderbook") == 0
    procs.start("orderbook-0", ["daemon", "run", "--roles", "orderbook"],
                {**env, "KMS_KRAKEN_SHARD": "0/2"})
    procs.start("orderbook-1", ["daemon", "run", "--roles", "orderbook"],
                {**env, "KMS_KRAKEN_SHARD": "1/2"})
    procs.start("analysis-2", ["daemon", "run", "--roles", "analysis"], env)
    mark = {p: max(r["ts"] for r in history(client, p, token)) for p in PAIRS}
    wait_for(lambda: all(len([r for r in history(client, p, token) if r["ts"] > mark[p]]) >= 6
                     for p in PAIRS), 60, "every pair to flow again from the sharded orderbooks")

    # -- kill one analysis process: the other takes its partitions ------------------------
    procs.procs["analysis-1"].kill()
    procs.procs.pop("analysis-1").wait(timeout=10)
    mark = {p: max(r["ts"] for r in history(client, p, token)) for p in PAIRS}
    wait_for(lambda: all(len([r for r in history(client, p, token) if r["ts"] > mark[p]]) >= 6
                     for p in PAIRS), 60, "history to keep growing after an analysis died")

    for p in PAIRS:
        check_complete(history(client, p, token))
    for name in ("orderbook-0", "orderbook-1", "analysis-2", "gateway"):
        assert procs.stop(name) == 0, procs.log(name)[-2000:]
        assert "Traceback" not in procs.log(name), procs.log(name)[-2000:]
    client.close()
