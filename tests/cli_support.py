"""A real daemon on loopback for the client and CLI tests: ``kms sim`` plus ``kms daemon run``
as child processes, every file in a private ``KMS_HOME``, the history optionally pre-filled
through the real SQLite store (10,000 snapshots cannot be waited for at one a second)."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from conftest import free_port
from krakenstream.client import KmsClient
from krakenstream.commands.demo import Child, child_env, wait_healthy
from krakenstream.core.snapshot import Snapshot
from krakenstream.errors import Conflict, NotFound
from krakenstream.store.sqlite import SQLiteHistoryStore

PASSWORD = "correct horse battery"


def kms(*args: str) -> list[str]:
    return [sys.executable, "-m", "krakenstream", *args]


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
