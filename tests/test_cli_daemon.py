"""``kms daemon``: options read as everywhere else in kms, and what ``status`` prints."""

from __future__ import annotations

import http.server
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from cli_support import LiveDaemon, kms, one_error, run, runner
from krakenstream.cli import app
from krakenstream.cli.daemon import normalize_pairs
from krakenstream.cli.demo import Child, child_env
from krakenstream.cli.render import format_status
from krakenstream.daemon.process import StateLock
from krakenstream.errors import InvalidPair

#: kms daemon with a simulator as real processes: seconds each
pytestmark = pytest.mark.slow


def test_pairs_are_typed_as_everywhere_else() -> None:
    assert normalize_pairs("eth-usd, BTC/USD,sol/usd,") == ["ETH/USD", "BTC/USD", "SOL/USD"]
    assert normalize_pairs(None) is None
    with pytest.raises(InvalidPair, match="'ETHUSD' is not a pair like ETH/USD or ETH-USD"):
        normalize_pairs("eth-usd,ETHUSD")


def test_a_bad_pair_is_one_line(tmp_path: Path) -> None:
    for command in ("run", "start"):
        one_error(run(["daemon", command, "--pairs", "eth-usd,ETHUSD"], tmp_path,
                      "http://127.0.0.1:1"),
                  "'ETHUSD' is not a pair like ETH/USD or ETH-USD", None)


def _stored_pairs(db: Path) -> set[str]:
    if not db.exists():
        return set()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT DISTINCT pair FROM snapshots")}
    except sqlite3.OperationalError:
        return set()
    finally:
        conn.close()


def test_run_tracks_pairs_typed_in_lower_case(tmp_path: Path) -> None:
    sim = Child("simulator", kms("sim", "--port", "0", "--seed", "5"), child_env(tmp_path),
                tmp_path / "sim.log", stdout_pipe=True)
    try:
        url = sim.read_line(20)
        env = child_env(tmp_path, KMS_KRAKEN_SNAPSHOT_INTERVAL="0.2")
        with (tmp_path / "daemon.out").open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "krakenstream", "daemon", "run", "--roles",
                 "orderbook,analysis", "--url", url, "--pairs", "eth-usd"],
                env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while _stored_pairs(tmp_path / "history.sqlite3") != {"ETH/USD"}:
                assert proc.poll() is None, (tmp_path / "daemon.out").read_text()
                assert time.monotonic() < deadline, (tmp_path / "daemon.out").read_text()
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
    finally:
        sim.stop()
    assert os.path.exists(tmp_path / "history.sqlite3")


def test_status_lines() -> None:
    assert format_status(None, "http://127.0.0.1:3000", None) == (
        "daemon: not running here; gateway http://127.0.0.1:3000: not answering")
    health = {"status": "ok", "roles": ["orderbook", "gateway"],
              "feed": {"pairs": {"ETH/USD": {"state": "live", "frames": 10, "mismatches": 0,
                                             "resyncs": 1}}},
              "bus": {"backend": "memory", "healthy": True},
              "store": {"backend": "sqlite", "healthy": False}}
    lines = format_status(42, "http://127.0.0.1:3000", health).splitlines()
    assert lines[0] == "daemon: pid 42; gateway http://127.0.0.1:3000: up"
    assert lines[1] == "status: ok; roles: orderbook, gateway"
    assert lines[2].split() == ["ETH/USD", "live", "frames=10", "mismatches=0", "resyncs=1"]
    assert lines[3:] == ["bus: memory ok", "store: sqlite DOWN"]


class _OtherDaemon(http.server.BaseHTTPRequestHandler):
    """Another daemon's gateway on the port we are told to use: its /health answers."""

    def do_GET(self) -> None:  # noqa: N802 - the handler's name is the method's
        body = json.dumps({"status": "ok", "pid": 1}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_start_is_not_fooled_by_another_daemon_on_the_port(tmp_path: Path) -> None:
    """Our child dies on "port in use" while another daemon answers /health there: start must
    see that the answer is not its child's and print the child's own error and hint."""
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OtherDaemon)
    port = other.server_address[1]
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        result = run(["daemon", "start", "--roles", "gateway", "--port", str(port),
                      "--wait", "60"], tmp_path, f"http://127.0.0.1:{port}")
    finally:
        other.shutdown()
        other.server_close()
    assert "daemon started" not in result.output
    one_error(result, f"port {port} on 127.0.0.1 is already in use",
              f"stop what uses it, or set gateway.port / KMS_GATEWAY_PORT "
              f"(log: {tmp_path / 'daemon.log'})")


def test_status_is_the_process_holding_this_directory_not_the_gateway(
        tmp_path: Path, live: LiveDaemon) -> None:
    """Split roles sharing one environment (issue 17 item 2): every process has
    ``KMS_GATEWAY_PORT``, and a gateway (the session's daemon) answers there. ``kms daemon
    status`` for a process without a gateway showed that gateway's /health as its own; it
    must speak of the process holding this state directory (here this test, holding the lock
    as a daemon does). A process with a health listener of its own is asked there:
    tests/test_docs_split_recipe.py runs that with real orderbook and analysis processes."""
    gateway_pid = httpx.get(live.url + "/health", timeout=5).json()["pid"]
    assert gateway_pid != os.getpid()
    env = {k: None for k in os.environ if k.startswith("KMS_")}
    env.update(KMS_HOME=str(tmp_path), KMS_GATEWAY_PORT=str(live.port), COLUMNS="200")

    def status(*args: str) -> Result:
        return runner.invoke(app, ["daemon", "status", *args], env=env)

    lock = StateLock(tmp_path / "daemon.pid")
    lock.acquire()
    try:
        # just started, its roles not noted yet: the gateway's port is asked, and an answer
        # from another pid is said to be one
        r = status()
        assert r.exit_code == 0, r.output
        assert r.stdout.strip() == (
            f"daemon: pid {os.getpid()}; gateway {live.url}: answered by another process "
            f"(pid {gateway_pid}), not this one")
        lock.note(("orderbook",), None)
        r = status()
        assert r.exit_code == 0, r.output
        assert r.stdout.strip() == (f"daemon: pid {os.getpid()} (orderbook); no /health here "
                                    "(no gateway role, daemon.health_port unset)")
        r = status("--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout) == {"pid": os.getpid(), "roles": ["orderbook"],
                                        "url": None, "health": None}
    finally:
        lock.release()
    # nobody holds it any more: the configured gateway is what status reports, as before
    r = status()
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == f"daemon: not running here; gateway {live.url}: up"


def test_status_lines_of_a_role_without_the_gateway() -> None:
    health = {"status": "ok", "roles": ["orderbook"], "pid": 42,
              "bus": {"backend": "kafka", "healthy": True}}
    assert format_status(42, "http://127.0.0.1:9101", health, roles=["orderbook"]) == (
        "daemon: pid 42 (orderbook); health http://127.0.0.1:9101: up\n"
        "status: ok; roles: orderbook\nbus: kafka ok")
    assert format_status(42, "http://127.0.0.1:3000", None, roles=["gateway"]) == (
        "daemon: pid 42 (gateway); gateway http://127.0.0.1:3000: not answering")
