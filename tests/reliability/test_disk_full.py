"""Scenario c: the disk holding history fills up. The daemon's SQLite store and its archive
live on a small tmpfs of their own; a filler file takes its last byte mid-run, and is
removed a few seconds later.

Meanwhile /health says ``degraded`` and why (history cannot be written), reads keep being
answered (no 5xx), the process does not die, and nothing already stored is lost. Once there
is room again it writes again: the snapshots the bus could not hold that long are a hole in
history, marked ``gap_before``. The recovery time runs from the filler's removal to /health
``ok`` with every pair storing again.
"""

from __future__ import annotations

import contextlib
import errno
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli_support import LiveDaemon
from conftest import skip_or_fail

from .conftest import Figures, rss_mb
from .support import Audit, Prober, audit, history, wait_for

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

PAIRS = ("ETH/USD", "BTC/USD")
INTERVAL_MS = 500
#: the in-process bus holds this many snapshots for a stalled store (bus.queue_size, at
#: least bus.buffer_ticks ticks of every pair), then drops the oldest: a second or two of
#: full disk is then a real loss, to be marked
QUEUE = 4
RSS_GROWTH_MB = 64


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs, unmounted afterwards."""
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs",
                           str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=True)


def fill(disk: Path) -> Path:
    """A file taking every free byte of ``disk`` (written until ENOSPC)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as fh:
        for size in (1 << 20, 1 << 12):
            block = b"\0" * size
            while True:
                try:
                    fh.write(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    return filler


def test_a_full_disk_is_reported_and_its_hole_marked(tmp_path: Path, small_disk: Path,
                                                     figures: Figures) -> None:
    d = LiveDaemon(tmp_path / "home", pairs=PAIRS, env={
        "KMS_KRAKEN_SNAPSHOT_INTERVAL": str(INTERVAL_MS / 1000),
        "KMS_BUS_QUEUE_SIZE": str(QUEUE),
        "KMS_BUS_BUFFER_TICKS": str(QUEUE // len(PAIRS)),
        "KMS_STORE_PATH": str(small_disk / "history.sqlite3"),
        "KMS_ARCHIVE_PATH": str(small_disk / "archive"),
    })
    try:
        d.start()
        assert d.daemon is not None
        pid = d.daemon.proc.pid
        token = d.login("admin@example.com")
        client = httpx.Client(base_url=d.url, timeout=10)
        wait_for(lambda: all(len(history(client, p, token)) >= 4 for p in PAIRS), 20,
                 "four snapshots of each pair")
        figures.rss_before_mb = rss_mb(pid)

        def health() -> dict[str, object]:
            return dict(client.get("/health").json())

        def cannot_write() -> bool:
            h = health()
            return h["status"] == "degraded" and any(
                "history: cannot write" in str(p) for p in h["problems"])  # type: ignore[attr-defined]

        paths = ["/health", "/api/pairs",
                 *(f"/api/analysis/history/{p.replace('/', '-')}?limit=20" for p in PAIRS)]
        with Prober(d.url, paths, token) as prober:
            filler = fill(small_disk)
            full_ms = int(time.time() * 1000)
            wait_for(cannot_write, 20, "/health to say history cannot be written")
            kept = {p: history(client, p, token) for p in PAIRS}
            # more ticks than the bus holds go by with the disk full: a real loss
            wait_for(lambda: health()["bus"]["dropped"] > 0,  # type: ignore[index]
                     15, "the bus to drop snapshots it cannot hold")
            h = health()
            assert h["bus"]["losing"], h["bus"]  # type: ignore[index]
            assert "database or disk is full" in str(h["history"]), h["history"]
            assert d.daemon.alive()
            filler.unlink()
            freed, freed_ms = time.monotonic(), int(time.time() * 1000)

            def recovered() -> bool:
                return health()["status"] == "ok" and all(
                    history(client, p, token)[-1]["ts"] > freed_ms for p in PAIRS)

            wait_for(recovered, 30, "/health ok and every pair stored again", every=0.05)
            figures.recovery_s = round(time.monotonic() - freed, 2)
        prober.record(figures)
        assert d.daemon.alive(), "the daemon died"
        figures.rss_after_mb = rss_mb(pid)

        total = Audit()
        for p in PAIRS:
            rows = history(client, p, token)
            # nothing already stored before the disk filled was lost
            before = {r["ts"] for r in kept[p] if r["ts"] < full_ms}
            assert before <= {r["ts"] for r in rows}
            total.add(audit(rows, INTERVAL_MS))
        total.record(figures)
        dropped = health()["bus"]["dropped"]  # type: ignore[index]
        figures.note = (f"16 MB tmpfs filled for {(freed_ms - full_ms) / 1000:.1f} s, "
                        f"the bus holding {QUEUE} snapshots")
        client.close()

        assert prober.errors_5xx == 0, prober.bodies_5xx
        assert prober.requests > 0
        total.assert_sound()
        # every snapshot the bus dropped is a tick of a marked hole, and nothing else is
        assert total.lost == dropped > 0, (total, dropped)
        assert figures.rss_after_mb < figures.rss_before_mb + RSS_GROWTH_MB
    finally:
        with contextlib.suppress(Exception):
            d.stop()
