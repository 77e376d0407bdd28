"""``kms analyze`` against the session's daemon."""

from __future__ import annotations

from pathlib import Path

import orjson

from cli_support import FULL, N_FULL, LiveDaemon, run
from krakenstream.cli.render import format_summary


def test_analyze(live: LiveDaemon, user_home: Path) -> None:
    r = run(["analyze", FULL, "--json"], user_home, live.url)
    assert r.exit_code == 0, r.output
    summary = orjson.loads(r.stdout)
    assert summary["pair"] == FULL and summary["snapshots"] == N_FULL
    assert summary["coverage"] == 1.0 and summary["interval_ms"] == 1000
    r = run(["analyze", FULL, "--limit", "100"], user_home, live.url)
    assert r.exit_code == 0, r.output
    for expected in ("100 of 100 expected", "volatility per step", "spread median"):
        assert expected in r.stdout, expected
    assert format_summary({"pair": "X/Y", "snapshots": 0}).row_count == 10
    r = run(["analyze", "DOGE/XYZ"], user_home, live.url)
    assert r.exit_code == 1 and "hint: kms pairs lists the tracked pairs" in r.stderr
