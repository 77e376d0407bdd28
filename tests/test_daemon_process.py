"""``kms daemon`` as real processes on loopback: run, refuse a second one, drain on SIGTERM,
start/status/stop in the background, a taken port."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import free_port, port_open
from krakenstream.daemon.process import (
    DaemonState,
    StateLock,
    bind_socket,
    read_pid,
    read_state,
)

#: kms daemon as real processes: seconds each
pytestmark = pytest.mark.slow

KMS = [sys.executable, "-m", "krakenstream"]


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*KMS, "sim", "--port", str(port), "--pairs", "ETH/USD,BTC/USD",
                                 "--seed", "3"], stdout=out, stderr=subprocess.STDOUT)
    for _ in range(100):
        if port_open("127.0.0.1", port, 0.1):
            break
        time.sleep(0.05)
    yield f"ws://127.0.0.1:{port}/v2"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def env_for(home: Path, sim_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_")}
    env.update({"KMS_HOME": str(home), "KMS_KRAKEN_URL": sim_url,
                "KMS_KRAKEN_PAIRS": "ETH/USD,BTC/USD", "KMS_KRAKEN_SNAPSHOT_INTERVAL": "0.5",
                "KMS_AUTH_BCRYPT_COST": "4", **extra})
    return env


def stored_rows(home: Path) -> int:
    db = home / "history.sqlite3"
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM snapshots").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def wait_for(predicate, within: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_run_refuses_a_second_daemon_and_drains_on_sigterm(tmp_path: Path, sim_url: str) -> None:
    env = env_for(tmp_path, sim_url)
    proc = subprocess.Popen([*KMS, "daemon", "run", "--roles", "orderbook,analysis"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: stored_rows(tmp_path) >= 4, 15), "snapshots are stored"
        second = subprocess.run([*KMS, "daemon", "run", "--roles", "orderbook,analysis"],
                                env=env, capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert "a daemon is already running" in second.stderr
        assert "Traceback" not in second.stderr + second.stdout
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "daemon stopping: draining" in err and "daemon stopped" in err
    assert "Traceback" not in err
    assert not (tmp_path / "daemon.pid").exists()


def test_start_status_stop(tmp_path: Path, sim_url: str) -> None:
    env = env_for(tmp_path, sim_url)

    def kms(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*KMS, *args], env=env, capture_output=True, text=True,
                              timeout=60)

    r = kms("daemon", "start", "--roles", "orderbook,analysis")
    assert r.returncode == 0, r.stderr
    assert "daemon started" in r.stdout and (tmp_path / "daemon.log").exists()
    pid = int(r.stdout.split("(pid ", 1)[1].split(")", 1)[0])
    r = kms("daemon", "start", "--roles", "orderbook,analysis")
    assert r.returncode == 1 and "already running" in r.stderr
    r = kms("daemon", "status")
    assert r.returncode == 0 and "pid" in r.stdout
    assert wait_for(lambda: stored_rows(tmp_path) >= 2, 15)
    r = kms("daemon", "stop")
    assert r.returncode == 0 and "daemon stopped" in r.stdout, r.stderr
    # stopped means ended, not only its lock released (a zombie has no command line)
    cmdline = Path(f"/proc/{pid}/cmdline")
    assert not cmdline.exists() or b"krakenstream" not in cmdline.read_bytes()
    r = kms("daemon", "stop")
    assert r.returncode == 1 and "no daemon is running" in r.stderr
    assert "kms daemon start" in r.stderr
    r = kms("daemon", "status")
    assert r.returncode == 1 and "no daemon is running" in r.stderr


def test_a_taken_port_is_one_clear_line(tmp_path: Path, sim_url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([*KMS, "daemon", "run", "--port", str(port)],
                           env=env_for(tmp_path, sim_url), capture_output=True, text=True,
                           timeout=30)
    assert r.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_config_is_one_clear_line(tmp_path: Path, sim_url: str) -> None:
    env = env_for(tmp_path, sim_url, KMS_KRAKEN_DEPHT="10")
    r = subprocess.run([*KMS, "daemon", "run"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1 and "KMS_KRAKEN_DEPHT" in r.stderr and "Traceback" not in r.stderr


def test_a_role_without_the_gateway_serves_its_own_health_and_metrics(
        tmp_path: Path, sim_url: str) -> None:
    """Split deployments: a process running only the orderbook role answers /health and
    /metrics on daemon.health_port, so its feed and bus counters can be probed and scraped
    (issue 14 item 10); nothing else is served there."""
    port = free_port()
    env = env_for(tmp_path, sim_url, KMS_DAEMON_HEALTH_PORT=str(port))
    proc = subprocess.Popen([*KMS, "daemon", "run", "--roles", "orderbook"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"

    def live() -> bool:
        try:
            health = httpx.get(base + "/health", timeout=2).json()
        except httpx.HTTPError:
            return False
        return bool(health["status"] == "ok")

    try:
        assert wait_for(live, 30), "the orderbook role's own /health says ok"
        health = httpx.get(base + "/health", timeout=2).json()
        assert health["roles"] == ["orderbook"] and health["pid"] == proc.pid
        assert health["feed"]["pairs"]["ETH/USD"]["state"] == "live"
        assert health["store"] is None and health["history"] is None
        metrics = httpx.get(base + "/metrics", timeout=2).text
        assert 'kms_feed_pair_live{pair="ETH/USD"} 1.0' in metrics
        assert "kms_snapshots_published_total" in metrics
        assert httpx.get(base + "/docs", timeout=2).status_code == 404
        assert httpx.get(base + "/api/pairs", timeout=2).status_code == 404
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"health=http://127.0.0.1:{port}" in err


def test_the_pid_file_says_where_the_daemon_answers(tmp_path: Path) -> None:
    """What ``kms daemon status`` reads: the pid alone while the daemon starts (then the
    status asks the configured gateway, and trusts only an answer carrying that pid), then
    its roles and its own /health URL; nothing once released."""
    path = tmp_path / "daemon.pid"
    lock = StateLock(path)
    lock.acquire()
    try:
        assert read_state(path) == DaemonState(os.getpid())
        lock.note(("orderbook",), "http://127.0.0.1:9101")
        assert read_state(path) == DaemonState(os.getpid(), ("orderbook",),
                                               "http://127.0.0.1:9101")
        lock.note(("orderbook", "analysis"), None)
        assert read_state(path) == DaemonState(os.getpid(), ("orderbook", "analysis"), None)
        assert read_pid(path) == os.getpid()
        assert path.read_text().splitlines()[0] == str(os.getpid())
    finally:
        lock.release()
    assert read_state(path) is None and read_pid(path) is None


async def test_connections_on_the_gateway_socket_have_nagle_off() -> None:
    """An answer's body is not held back behind its headers: connections accepted on the
    socket bind_socket makes (as uvicorn accepts them: loop.create_server(sock=...)) have
    TCP_NODELAY. Without it every request after the first on a kept-alive connection waited
    40 ms for the client's delayed ACK (found by tests/reliability/test_stream_load.py: p50
    50 ms)."""
    sock = bind_socket("127.0.0.1", 0)
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            conn = transport.get_extra_info("socket")
            accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    async with server:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        try:
            assert await asyncio.wait_for(accepted, 5) == 1
        finally:
            writer.close()
