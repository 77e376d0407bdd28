"""What the reliability scenarios share: a history audit (holes, marks, duplicates) and a
background HTTP client that counts the gateway's answers while a fault is on.

A *hole* is two consecutive stored snapshots of a pair more than one interval apart; it is
*marked* when the later one says ``gap_before``. The audit also counts the opposite error, a
``gap_before`` where nothing is missing, so a scenario asserts both "every hole marked" and
"no mark without a hole".
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from conftest import free_port, port_open

from .conftest import Figures


@dataclass
class Audit:
    rows: int = 0
    holes: int = 0
    marked: int = 0
    unmarked_holes: list[tuple[int, int]] = field(default_factory=list)
    marks_without_hole: list[int] = field(default_factory=list)
    #: ticks missing inside the holes
    lost: int = 0
    duplicated: int = 0

    def add(self, other: Audit) -> None:
        self.rows += other.rows
        self.holes += other.holes
        self.marked += other.marked
        self.unmarked_holes += other.unmarked_holes
        self.marks_without_hole += other.marks_without_hole
        self.lost += other.lost
        self.duplicated += other.duplicated

    def assert_sound(self) -> None:
        assert self.duplicated == 0, f"{self.duplicated} snapshots stored twice"
        assert not self.unmarked_holes, f"holes without gap_before: {self.unmarked_holes}"
        assert not self.marks_without_hole, f"gap_before with nothing missing before: " \
                                            f"{self.marks_without_hole}"

    def record(self, figures: Figures) -> None:
        figures.lost = self.lost
        figures.marked = self.marked
        figures.unmarked = len(self.unmarked_holes) + len(self.marks_without_hole)
        figures.duplicated = self.duplicated


def audit(rows: Iterable[dict[str, Any]], interval_ms: int) -> Audit:
    """One pair's history, oldest first (the first row's own mark is not judged: nothing
    is stored before it)."""
    a = Audit()
    seen: set[int] = set()
    prev: int | None = None
    for row in rows:
        ts = int(row["ts"])
        a.rows += 1
        if ts in seen:
            a.duplicated += 1
            continue
        seen.add(ts)
        if prev is not None:
            assert ts > prev, f"history out of order: {prev} then {ts}"
            step = ts - prev
            if step != interval_ms:
                a.holes += 1
                a.lost += step // interval_ms - 1
                if row["gap_before"]:
                    a.marked += 1
                else:
                    a.unmarked_holes.append((prev, ts))
            elif row["gap_before"]:
                a.marks_without_hole.append(ts)
        prev = ts
    return a


def history(client: httpx.Client, pair: str, token: str) -> list[dict[str, Any]]:
    """Every stored snapshot of ``pair``, oldest first (NDJSON)."""
    r = client.get(f"/api/analysis/history/{pair.replace('/', '-')}",
                   params={"format": "ndjson", "order": "asc"},
                   headers={"Authorization": f"Bearer {token}"})
    if r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def wait_for(predicate: Callable[[], Any], within: float, what: str,
             every: float = 0.1) -> Any:
    """The first truthy ``predicate()``, polled; AssertionError after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        time.sleep(every)


class Prober:
    """A thread asking the gateway ``paths`` in turn until stopped, counting the answers by
    status; a refused or cut connection (the daemon is down) is counted apart, not as an
    answer. What a user polling the daemon through a fault would see."""

    def __init__(self, base_url: str, paths: list[str], token: str | None = None,
                 every: float = 0.05) -> None:
        self.base_url, self.paths, self.every = base_url, paths, every
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.statuses: Counter[int] = Counter()
        self.unreachable = 0
        self.bodies_5xx: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prober", daemon=True)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=5, headers=self.headers) as client:
            while not self._stop.is_set():
                for path in self.paths:
                    try:
                        r = client.get(path)
                    except httpx.TransportError:
                        self.unreachable += 1
                        continue
                    self.statuses[r.status_code] += 1
                    if r.status_code >= 500 and len(self.bodies_5xx) < 5:
                        self.bodies_5xx.append(f"{r.status_code} {path}: {r.text[:300]}")
                self._stop.wait(self.every)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors_5xx(self) -> int:
        """5xx answers other than 503 (a 503 carries a documented message)."""
        return sum(n for s, n in self.statuses.items() if s >= 500 and s != 503)

    def record(self, figures: Figures) -> None:
        figures.requests += self.requests
        figures.errors_5xx += self.errors_5xx
        figures.answered_503 += self.statuses[503]


class Private:
    """A private server process (Redis, MariaDB) on a free loopback port: started, killed
    and started again by its own pid, never the shared instance's."""

    def __init__(self, name: str, args: list[str], port: int, log: Path,
                 setup: list[str] | None = None) -> None:
        self.name, self.args, self.port, self.log = name, args, port, log
        #: a command run once, before the first start (MariaDB's data directory)
        self.setup = setup
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, within: float = 30) -> None:
        if self.setup is not None:
            with self.log.open("ab") as out:
                subprocess.run(self.setup, check=True, stdout=out, stderr=subprocess.STDOUT,
                               timeout=60)
            self.setup = None
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        proc = self.proc
        wait_for(lambda: port_open("127.0.0.1", self.port, 0.2) or proc.poll() is not None,
                 within, f"{self.name} to listen on {self.port}", every=0.05)
        if proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {proc.returncode}; see {self.log}")

    def kill(self) -> None:
        """SIGKILL: the crash, nothing flushed that was not already."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None


def private_redis(folder: Path) -> Private:
    """Redis keeping every acknowledged write (append-only, fsync always), as a deployment
    that must survive a crash would run it."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    return Private("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(folder), "--save", "", "--appendonly", "yes",
                             "--appendfsync", "always", "--daemonize", "no"],
                   port, folder / "redis.log")


def private_mariadb(folder: Path) -> Private:
    """MariaDB with its own data directory (mariadb-install-db), root without a password
    on 127.0.0.1 only."""
    data = folder / "data"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    return Private("mariadb", ["mariadbd", "--no-defaults", f"--datadir={data}",
                               f"--port={port}", "--bind-address=127.0.0.1",
                               f"--socket={folder / 'mariadb.sock'}",
                               f"--pid-file={folder / 'mariadb.pid'}", "--user=root",
                               "--innodb-buffer-pool-size=32M", "--skip-log-bin"],
                   port, folder / "mariadb.log",
                   setup=["mariadb-install-db", "--no-defaults", f"--datadir={data}",
                          "--user=root", "--auth-root-authentication-method=normal",
                          "--skip-test-db"])
