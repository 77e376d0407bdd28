"""Scenario a: the embedded daemon (every role in one process, SQLite) is SIGKILLed mid-run
and started again on the same files. Its history across the restart has one hole, marked;
nothing is stored twice; a client polling all along never gets a 5xx. The recovery time is
from the restart to the first snapshot stored by the new process."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from cli_support import LiveDaemon

from .conftest import Figures, rss_mb
from .support import Audit, Prober, audit, history, wait_for

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

PAIRS = ("ETH/USD", "BTC/USD")
INTERVAL_MS = 500


def test_sigkill_and_restart_marks_the_hole(tmp_path: Path, figures: Figures) -> None:
    d = LiveDaemon(tmp_path / "home", pairs=PAIRS,
                   env={"KMS_KRAKEN_SNAPSHOT_INTERVAL": str(INTERVAL_MS / 1000)})
    try:
        d.start()
        token = d.login("admin@example.com")
        client = httpx.Client(base_url=d.url, timeout=10)
        wait_for(lambda: all(len(history(client, p, token)) >= 4 for p in PAIRS), 20,
                 "four snapshots of each pair")
        assert d.daemon is not None
        figures.rss_before_mb = rss_mb(d.daemon.proc.pid)
        paths = ["/health", *(f"/api/analysis/latest/{p.replace('/', '-')}" for p in PAIRS)]
        with Prober(d.url, paths, token) as prober:
            before = {p: history(client, p, token)[-1]["ts"] for p in PAIRS}
            killed_ms = int(time.time() * 1000)
            d.daemon.proc.send_signal(signal.SIGKILL)
            assert d.daemon.proc.wait(timeout=10) == -signal.SIGKILL
            d.daemon = None
            restarted = time.monotonic()
            d.start_daemon()

            def stored_again() -> bool:
                return all(history(client, p, token)[-1]["ts"] > before[p] for p in PAIRS)

            wait_for(stored_again, 20, "the restarted daemon to store snapshots", every=0.05)
            figures.recovery_s = round(time.monotonic() - restarted, 2)
            wait_for(lambda: all(len([r for r in history(client, p, token)
                                      if r["ts"] > before[p]]) >= 3 for p in PAIRS),
                     20, "three snapshots after the restart")
        prober.record(figures)
        assert d.daemon is not None
        figures.rss_after_mb = rss_mb(d.daemon.proc.pid)

        total = Audit()
        for p in PAIRS:
            rows = history(client, p, token)
            # the first snapshot after the kill (the new process's first) says gap_before
            first = next(r for r in rows if r["ts"] > killed_ms)
            assert first["gap_before"], first
            total.add(audit(rows, INTERVAL_MS))
        total.record(figures)
        figures.note = ("SIGKILL, restart on the same SQLite files (RSS after: the new "
                        "process)")
        client.close()

        assert prober.errors_5xx == 0, prober.bodies_5xx
        assert prober.requests > 0
        total.assert_sound()
        assert total.lost > 0
    finally:
        d.stop()
