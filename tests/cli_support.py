"""A real daemon on loopback for the client and CLI tests: ``kms sim`` plus ``kms daemon run``
as child processes, every file in a private ``KMS_HOME``, the history optionally pre-filled
through the real SQLite store (10,000 snapshots cannot be waited for at one a second).

Also a pytest plugin (``conftest.py`` loads it): the fixtures the ``test_cli_*`` modules share,
above all one daemon for the whole session (``live``) with a full pair (:data:`FULL`) written
before it started, and :func:`run` / :func:`one_error` to invoke ``kms`` and check a failure."""

from __future__ import annotations

import asyncio
import os
import select
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
from click.testing import Result
from typer.testing import CliRunner

from conftest import free_port
from krakenstream.cli import app
from krakenstream.cli.credentials import Credential, CredentialsFile
from krakenstream.cli.demo import Child, child_env, wait_healthy
from krakenstream.client import KmsClient
from krakenstream.core.snapshot import Snapshot
from krakenstream.errors import Conflict, NotFound
from krakenstream.store.sqlite import SQLiteHistoryStore

PASSWORD = "correct horse battery"
#: an untracked pair whose full history (10,000 snapshots) is written before the daemon starts
FULL = "ADA/USD"
FULL_START_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z
N_FULL = 10_000
USER = "cli-user@example.com"

runner = CliRunner()


def kms(*args: str) -> list[str]:
    return [sys.executable, "-m", "krakenstream", *args]


def read_until(stream: IO[bytes], done: Callable[[bytes], bool], timeout: float,
               seen: bytes = b"") -> bytes:
    """What a child wrote to ``stream`` (after ``seen``), read until ``done`` holds for it;
    an AssertionError with the tail of it if that takes longer than ``timeout`` or the
    stream ends first."""
    deadline = time.monotonic() + timeout
    while not done(seen):
        left = deadline - time.monotonic()
        assert left > 0, f"not seen within {timeout:g} s; the output ends: {seen[-2000:]!r}"
        if select.select([stream], [], [], min(left, 0.2))[0]:
            chunk = os.read(stream.fileno(), 65536)
            assert chunk, f"the stream ended first; it ends: {seen[-2000:]!r}"
            seen += chunk
    return seen


def make_snapshots(pair: str, n: int, *, start_ms: int) -> list[Snapshot]:
    """``n`` one-second snapshots of a small moving book, oldest first."""
    out = []
    for i in range(n):
        bid = 2_000_000 + (i % 97) * 3
        out.append(Snapshot(
            pair=pair, ts=start_ms + i * 1000, exchange_ts=None, seq=i + 1,
            price_precision=4, qty_precision=6,
            bids=((bid, 1_500_000 + i), (bid - 7, 20_000)),
            asks=((bid + 5, 900_000), (bid + 9, 3_000_000 + i)),
            checksum=1000 + i, gap_before=(i % 500 == 0),
        ))
    return out


def prefill(home: Path, snaps: list[Snapshot]) -> None:
    async def go() -> None:
        store = SQLiteHistoryStore(home / "history.sqlite3", history_limit=10_000)
        await store.open()
        try:
            for i in range(0, len(snaps), 1000):
                await store.add(snaps[i:i + 1000])
        finally:
            await store.close()

    asyncio.run(go())


@dataclass
class LiveDaemon:
    """The simulator and a daemon on free loopback ports, restartable on the same port."""

    home: Path
    pairs: tuple[str, ...] = ("ETH/USD", "BTC/USD")
    #: without the orderbook role no simulator is needed (a bare gateway starts faster)
    roles: tuple[str, ...] = ("orderbook", "analysis", "gateway")
    port: int = field(default_factory=free_port)
    #: more ``KMS_*`` settings for the daemon (a faster snapshot tick, say)
    env: dict[str, str] = field(default_factory=dict)
    sim: Child | None = None
    daemon: Child | None = None
    sim_url: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli_env(self) -> dict[str, str]:
        """The environment a ``kms`` command needs to reach this daemon with its files."""
        return {"KMS_HOME": str(self.home), "KMS_SERVER": self.url}

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.sim is None and "orderbook" in self.roles:
            self.sim = Child("simulator", kms("sim", "--port", "0", "--seed", "7"),
                             child_env(self.home), self.home / "sim.log", stdout_pipe=True)
            self.sim_url = self.sim.read_line(20)
        self.start_daemon()

    def start_daemon(self) -> None:
        env = child_env(
            self.home,
            KMS_KRAKEN_URL=self.sim_url,
            KMS_KRAKEN_PAIRS=",".join(self.pairs),
            KMS_GATEWAY_PORT=str(self.port),
            KMS_AUTH_BCRYPT_COST="4",
            KMS_DAEMON_LOG_LEVEL="info",
            KMS_DAEMON_ROLES=",".join(self.roles),
            **self.env,
        )
        if not self.sim_url:
            del env["KMS_KRAKEN_URL"]
        self.daemon = Child("daemon", kms("daemon", "run"), env, self.home / "daemon.log")
        with KmsClient(self.url, timeout=2) as client:
            wait_healthy(client, self.daemon, 30)

    def stop_daemon(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    def stop(self) -> None:
        self.stop_daemon()
        if self.sim is not None:
            self.sim.stop()
            self.sim = None

    def login(self, email: str) -> str:
        """Register ``email`` (once) and return a fresh token."""
        with KmsClient(self.url) as client:
            try:
                client.register(email, PASSWORD)
            except Conflict:  # registered by an earlier test
                pass
            return str(client.login(email, PASSWORD)["token"])

    def wait_snapshots(self, pair: str, token: str, timeout: float = 20) -> dict[str, object]:
        """The first stored snapshot of ``pair`` (the daemon publishes one a second)."""
        deadline = time.monotonic() + timeout
        with KmsClient(self.url, token) as client:
            while True:
                try:
                    return client.latest(pair)
                except NotFound:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)


def first_line(proc: subprocess.Popen[str], within: float = 10.0) -> str:
    """The first line ``kms sim`` prints (its address), read once it is there; an
    AssertionError if nothing came within ``within`` seconds."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(within):
            raise AssertionError("kms sim printed nothing")
    return proc.stdout.readline().strip()


# -- invoking kms -------------------------------------------------------------------------------


def run(args: list[str], home: Path, server: str, *, input: str | None = None,
        columns: int = 200) -> Result:
    """``kms ARGS`` with its own home; never a traceback unless --verbose asked for one."""
    result = runner.invoke(
        app, args, input=input,
        env={"KMS_HOME": str(home), "KMS_SERVER": server, "COLUMNS": str(columns),
             "KMS_VERBOSE": ""},
    )
    if "--verbose" not in args:
        assert "Traceback" not in result.output, result.output
    return result


def one_error(result: Result, message: str, hint: str | None) -> None:
    """A failure the CLI expected: exit 1, one error line (plus a hint line), nothing else."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: "), lines
    assert message in lines[0], lines
    if hint is None:
        assert len(lines) == 1, lines
    else:
        assert lines[1:] == [f"hint: {hint}"], lines
    assert result.stdout == ""


# -- fixtures (a pytest plugin: conftest.py names this module in pytest_plugins) -----------------


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    """One daemon for every CLI test module; :data:`FULL` holds 10,000 snapshots."""
    home = tmp_path_factory.mktemp("daemon-home")
    prefill(home, make_snapshots(FULL, N_FULL, start_ms=FULL_START_MS))
    daemon = LiveDaemon(home)
    try:
        daemon.start()
        daemon.login(USER)  # the first account: the admin (it tracks pairs, manages accounts)
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def token(live: LiveDaemon) -> str:
    return live.login(USER)


@pytest.fixture
def user_home(tmp_path: Path, live: LiveDaemon, token: str) -> Path:
    """A client home already logged in to the session's daemon."""
    home = tmp_path / "client"
    CredentialsFile(home / "credentials.json").save(live.url, Credential(USER, token))
    return home
