"""docs/operations.md's "Split roles without Docker", run exactly as written (issue 17 item 2).

The recipe's shell blocks are taken from the page and run by bash, each after the first (the
environment every shell of the recipe starts with). The only values the test changes are the
ones the recipe reads from the environment with a default: a private tansu broker on a free
port, a private MariaDB database, a Redis key prefix of its own, free ports for the gateway
and the two health listeners, a local ``kms sim`` for Kraken, and ``HOME`` (where the recipe
puts its state directories and ``kms login`` its credentials) in the test's folder. Between
the blocks the test waits on conditions (every process's ``/health`` ok, history in Redis),
never for a fixed time; it stops every process it started by its pid whatever happens, and
the fixtures drop the database, delete the keys and stop the broker.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from conftest import Broker, free_port, port_open
from krakenstream.daemon.process import read_pid

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Split roles without Docker"
ROLES = ("orderbook", "analysis", "gateway")
PASSWORD = "correct horse battery staple"


def recipe() -> list[str]:
    """The section's ``sh`` blocks, in order, as a reader copies them."""
    text = (ROOT / "docs" / "operations.md").read_text()
    assert f"\n{HEADING}\n" in text
    section = text.split(f"\n{HEADING}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^( *)```sh\n(.*?)^\1```$", section, flags=re.M | re.S)
    return [textwrap.dedent(body) for _, body in blocks]


def listen_port() -> int:
    """A free port below Linux's ephemeral range (32768-60999). The recipe binds its three
    ports seconds after they are chosen, one process after the other; meanwhile every
    outgoing connection on the machine (these processes' own to Kafka and Redis, other
    suites') takes a local port from that range, and ``free_port()``'s can be taken."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32768)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 20000-32767")


def wait(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        time.sleep(0.1)


def alive(pid: int) -> bool:
    """A daemon of ours still running (a pid reused by something else is not ours)."""
    try:
        return b"krakenstream" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class Daemons:
    """The daemons the recipe starts (``kms daemon start`` detaches them): every pid seen,
    from its output and from the pid files, stopped by pid at the end if still running."""

    def __init__(self, split_dir: Path) -> None:
        self.split_dir = split_dir
        self.pids: set[int] = set()

    def stop_all(self) -> None:
        for role in ROLES:
            pid = read_pid(self.split_dir / role / "daemon.pid")
            if pid is not None:
                self.pids.add(pid)
        running = [pid for pid in self.pids if alive(pid)]
        for pid in running:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in running) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in running:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def sim_url(tmp_path: Path) -> Iterator[str]:
    """A local Kraken (``kms sim``) on a free port, stopped by its pid."""
    port = free_port()
    with (tmp_path / "sim.log").open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "krakenstream", "sim", "--port",
                                 str(port), "--seed", "17"], stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        wait(lambda: port_open("127.0.0.1", port, 0.2) or proc.poll() is not None, 30,
             "the simulator")
        assert proc.poll() is None, (tmp_path / "sim.log").read_text()
        yield f"ws://127.0.0.1:{port}/v2"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    d = Daemons(tmp_path / "home" / "krakenstream-split")
    try:
        yield d
    finally:
        d.stop_all()


def test_the_split_roles_recipe_runs_as_written(
        kafka_broker: Broker, redis_prefix: str, redis_server_url: str, mysql_url: str,
        sim_url: str, tmp_path: Path, daemons: Daemons) -> None:
    # (daemons last: torn down first, so they stop before the services they use)
    environment, start, check, use, stop = recipe()
    ports = {"KMS_GATEWAY_PORT": listen_port(), "ORDERBOOK_HEALTH_PORT": listen_port(),
             "ANALYSIS_HEALTH_PORT": listen_port()}
    assert len(set(ports.values())) == 3
    ours = {"KMS_KAFKA_BOOTSTRAP": kafka_broker.bootstrap, "KMS_REDIS_URL": redis_server_url,
            "KMS_REDIS_PREFIX": redis_prefix, "KMS_MYSQL_URL": mysql_url,
            "KMS_KRAKEN_URL": sim_url, **{k: str(v) for k, v in ports.items()}}
    for name in ours:  # each one a variable the recipe itself reads, with its default
        assert re.search(rf"^(export )?{name}=\$\{{{name}:-", environment, flags=re.M), name
    home = tmp_path / "home"
    home.mkdir()
    kms = Path(sys.executable).parent / "kms"
    assert kms.is_file(), "the kms command the recipe types"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KMS_", "XDG_"))}
    env.update(ours, HOME=str(home), PATH=f"{kms.parent}{os.pathsep}{env.get('PATH', '')}",
               COLUMNS="100")
    split_dir = daemons.split_dir

    def sh(block: str, stdin: str | None = None) -> str:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", f"{environment}\n{block}"],
                              env=env, input=stdin, capture_output=True, text=True,
                              timeout=180, start_new_session=True)
        assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}\n{logs()}"
        return done.stdout

    def logs() -> str:
        return "\n".join(f"-- {p}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(split_dir.glob("*/daemon.log")))

    # 2. start: each role in its own state directory, each start printing its pid
    out = sh(start)
    started = [int(pid) for pid in re.findall(r"^daemon started \(pid (\d+)\)", out, re.M)]
    daemons.pids.update(started)
    assert len(started) == 3, out
    pid = dict(zip(ROLES, started, strict=True))
    for role in ROLES:
        assert read_pid(split_dir / role / "daemon.pid") == pid[role]
    assert f", gateway http://127.0.0.1:{ports['KMS_GATEWAY_PORT']};" in out

    # 3. check: once every process says ok, each status is that process's own
    listeners = {"orderbook": ports["ORDERBOOK_HEALTH_PORT"],
                 "analysis": ports["ANALYSIS_HEALTH_PORT"], "gateway": ports["KMS_GATEWAY_PORT"]}

    def all_ok() -> bool:
        try:
            return all(httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()["status"]
                       == "ok" for port in listeners.values())
        except httpx.HTTPError:
            return False

    wait(all_ok, 60, "every role's /health to say ok")
    out = sh(check)
    heads = [line for line in out.splitlines() if line.startswith("daemon: ")]
    assert heads == [
        f"daemon: pid {pid[role]} ({role}); {'gateway' if role == 'gateway' else 'health'} "
        f"http://127.0.0.1:{listeners[role]}: up" for role in ROLES], out
    assert [line for line in out.splitlines() if line.startswith("status: ")] == [
        f"status: ok; roles: {role}" for role in ROLES], out
    assert re.findall(r"^bus: (\w+) (\w+)$", out, flags=re.M) == [("kafka", "ok")] * 3, out
    assert re.findall(r"^store: (\w+) (\w+)$", out, flags=re.M) == [("redis", "ok")] * 2, out
    assert re.findall(r"^users: (\w+) (\w+)$", out, flags=re.M) == [("mysql", "ok")], out
    assert re.search(r"^  BTC/USD +live ", out, flags=re.M), out

    # 4. use it: snapshots went sim → orderbook → Kafka → analysis → Redis → gateway
    client = redis.Redis.from_url(redis_server_url)
    try:
        wait(lambda: client.zcard(f"{redis_prefix}history:BTC/USD") >= 2, 60,
             "BTC/USD's history in Redis")
    finally:
        client.close()
    out = sh(use, stdin=f"{PASSWORD}\n")
    server = f"http://127.0.0.1:{ports['KMS_GATEWAY_PORT']}"
    assert f"registered you@example.com on {server}" in out, out
    assert f"logged in to {server} as you@example.com" in out, out
    rows = re.findall(r"^ *\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z? .*$", out, flags=re.M)
    assert 2 <= len(rows) <= 5, out
    assert (home / ".config" / "krakenstream" / "credentials.json").is_file()

    # 5. stop: each by the pid its state directory holds, drained, exit logged
    out = sh(stop)
    assert re.findall(r"^daemon stopped \(pid (\d+)\)$", out, flags=re.M) == [
        str(pid[role]) for role in ROLES], out
    for role in ROLES:
        assert not alive(pid[role])
        assert read_pid(split_dir / role / "daemon.pid") is None
        log = (split_dir / role / "daemon.log").read_text()
        assert "daemon stopped" in log and "Traceback" not in log, log[-3000:]
