"""A smoke run of ``bench/scale.py``: the real simulator and a real ``kms daemon run`` (the
embedded stack) tracking 20 pairs for a 2 s window. Every figure the bench prints is there,
nothing published in the window is lost, and the history holds it unmarked; the figures
themselves are the bench's (BENCHMARKS.md), not this test's."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

FIELDS = {
    "stack", "pairs", "rate", "seconds", "seconds_to_live", "daemon_cores", "daemon_rss_mb",
    "frames_per_s", "asked_frames_per_s", "published_per_s", "stored_per_s", "stored_rows",
    "published", "lost", "history_behind_s", "gaps_marked", "publish_to_store_p50_ms",
    "publish_to_store_p99_ms",
    "bytes_per_snapshot", "bytes_how", "bus_dropped", "sim_cores", "broker_cores",
    "sim_behind_warnings", "load_1min",
}


def test_scale_bench_smoke() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--pairs", "20", "--seconds", "2",
         "--warmup", "0", "--json"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert set(out) == FIELDS
    assert out["pairs"] == 20 and out["stack"] == "embedded"
    # every pair published once a tick, all of it stored, none of it marked
    assert out["published"] == 20 * round(out["seconds"]) > 0
    assert out["stored_rows"] == out["published"]
    assert out["lost"] == 0 and out["bus_dropped"] == 0 and out["gaps_marked"] == 0
    assert 0 <= out["history_behind_s"] < 60
    assert 0 < out["publish_to_store_p50_ms"] <= out["publish_to_store_p99_ms"] < 10_000
    assert out["daemon_cores"] > 0 and out["daemon_rss_mb"] > 0 and out["sim_cores"] > 0
    assert 0 < out["bytes_per_snapshot"] < 2_000 and "SQLite" in out["bytes_how"]
    assert not math.isnan(out["frames_per_s"]) and out["broker_cores"] is None
