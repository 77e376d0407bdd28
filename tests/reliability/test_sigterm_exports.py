"""Scenario d: SIGTERM while clients download exports. Four ``kms export`` clients (two CSV,
two Parquet), each three pairs of 10,000 snapshots, are downloading when the daemon gets
SIGTERM.

The daemon exits 0 within the documented shutdown time (30 s: compose's
``stop_grace_period``, systemd's ``TimeoutStopSec``; operations.md), answers no 5xx before
it goes, and no client leaves a corrupt file: a client either wrote the whole export (every
row of every pair, readable) or failed with one error line and left nothing under the name
asked for, nor a part file beside it (``kms export`` renames into place only once complete).
"""

from __future__ import annotations

import csv
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cli_support import FULL_START_MS, LiveDaemon, make_snapshots, prefill, read_until
from krakenstream.cli.credentials import Credential, CredentialsFile
from krakenstream.cli.demo import child_env

from .conftest import Figures, rss_mb
from .support import Prober, wait_for

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

EXPORTED = ("ADA/USD", "LTC/USD", "XRP/USD")
ROWS = 10_000
#: what operations.md gives the daemon to drain (compose's stop_grace_period)
SHUTDOWN_S = 30
#: exports hold bounded slots (gateway.max_exports) and bounded chunks: a few exports may
#: not grow the daemon by more than this (RSS, MB)
RSS_GROWTH_MB = 128
#: ``kms`` itself, its modules imported first, held until a line on stdin: the clients
#: then begin at once (a cold start takes seconds on a loaded machine)
HELD_KMS = """\
import sys
import krakenstream.cli.export, krakenstream.store.archive.export
from krakenstream.cli import main
print("ready", flush=True)
sys.stdin.readline()
sys.argv = ["kms", *sys.argv[1:]]
main()
"""
STATUS = re.compile(r"\bhttp method=\S+ path=(\S+) status=(\d+)")


def test_sigterm_under_export_load(tmp_path: Path, figures: Figures) -> None:
    home = tmp_path / "home"
    home.mkdir()
    prefill(home, [s for pair in EXPORTED
                   for s in make_snapshots(pair, ROWS, start_ms=FULL_START_MS)])
    d = LiveDaemon(home, pairs=("ETH/USD",))
    clients: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
    try:
        d.start()
        assert d.daemon is not None
        daemon = d.daemon.proc
        email = "admin@example.com"
        token = d.login(email)
        client_home = tmp_path / "client"
        CredentialsFile(client_home / "credentials.json").save(d.url, Credential(email, token))
        out = tmp_path / "out"
        out.mkdir()
        figures.rss_before_mb = rss_mb(daemon.pid)
        with Prober(d.url, ["/health", "/api/analysis/latest/ETH-USD"], token) as prober:
            for i, fmt in enumerate(("csv", "parquet", "csv", "parquet")):
                dest = out / f"export-{i}.{fmt}"
                args = [sys.executable, "-c", HELD_KMS, "export", *EXPORTED, "--since",
                        str(FULL_START_MS), f"--{fmt}", str(dest)]
                env = child_env(client_home, KMS_SERVER=d.url)
                clients.append((fmt, dest, subprocess.Popen(
                    args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)))
            for _, _, proc in clients:
                assert proc.stdout is not None
                read_until(proc.stdout, lambda seen: b"ready\n" in seen, 60)
            for _, _, proc in clients:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                proc.stdin.close()
                proc.stdin = None  # communicate() below must not flush it

            def exporting() -> int:
                """Exports being answered, once at least two are."""
                h = prober_health(d.url)
                busy = 0 if h is None else int(h["heavy_reads"]["history"]["busy"])
                return busy if busy >= 2 else 0

            in_flight = wait_for(exporting, 30, "two exports under way", every=0.02)
            figures.rss_after_mb = rss_mb(daemon.pid)
            termed = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            rc = daemon.wait(timeout=SHUTDOWN_S + 5)
            shutdown_s = round(time.monotonic() - termed, 2)
            d.daemon = None
        results = []
        for fmt, dest, proc in clients:
            _, stderr = proc.communicate(timeout=60)
            results.append((fmt, dest, proc.returncode, stderr.decode(errors="replace")))
        log = (home / "daemon.log").read_text(errors="replace")
        statuses = [(path, int(s)) for path, s in STATUS.findall(log)]
        server_5xx = [(p, s) for p, s in statuses if s >= 500]
        complete = 0
        failures: list[str] = []
        for fmt, dest, code, stderr in results:
            assert "Traceback" not in stderr, stderr
            leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")
                         and dest.name in p.name]
            assert not leftovers, f"part files left: {leftovers}"
            if code == 0:
                complete += 1
                assert rows_in(dest, fmt) == ROWS * len(EXPORTED), f"{dest} is incomplete"
            else:
                errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
                assert code == 1 and len(errors) == 1, stderr
                failures.append(errors[0])
                assert not dest.exists(), f"{dest} left behind by a failed export"
        # the daemon's request log has every answer, the prober's and the exports' alike
        figures.requests = len(statuses)
        figures.errors_5xx = len([s for _, s in server_5xx if s != 503])
        figures.answered_503 = len([s for _, s in server_5xx if s == 503])
        history_answers = Counter(s for p, s in statuses if "/history/" in p)
        figures.extra = {"shutdown_s": shutdown_s, "exports": len(clients),
                         # the export answers by status, and those the shutdown cut short
                         "history_answers": dict(history_answers),
                         "cut_short": log.count("request cut short"),
                         "in_flight": in_flight, "complete": complete,
                         "failed_cleanly": len(clients) - complete, "errors": failures}
        figures.note = (f"SIGTERM with {len(clients)} exports of {len(EXPORTED)}x{ROWS:,} "
                        f"rows begun ({in_flight} being answered): exit {rc} in {shutdown_s} s; "
                        f"{complete} complete, "
                        f"{len(clients) - complete} failed leaving no file")
        assert rc == 0, log[-3000:]
        assert shutdown_s < SHUTDOWN_S
        assert figures.rss_after_mb < figures.rss_before_mb + RSS_GROWTH_MB
        assert figures.errors_5xx == figures.answered_503 == prober.errors_5xx == 0, \
            (prober.bodies_5xx, server_5xx)
        assert "Traceback" not in log, log[-3000:]
    finally:
        for _, _, proc in clients:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
        d.stop()


def prober_health(url: str) -> dict | None:  # type: ignore[type-arg]
    import httpx

    try:
        return dict(httpx.get(f"{url}/health", timeout=2).json())
    except httpx.HTTPError:
        return None


def rows_in(path: Path, fmt: str) -> int:
    """Rows of a finished export, read back whole (a truncated file fails here)."""
    if fmt == "parquet":
        return int(pq.read_table(path).num_rows)
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    width = len(rows[0])
    assert all(len(r) == width for r in rows), "a row cut short"
    return len(rows) - 1
