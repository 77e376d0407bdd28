"""``kms bars`` against the session's daemon."""

from __future__ import annotations

from pathlib import Path

import orjson

from cli_support import FULL, FULL_START_MS, N_FULL, LiveDaemon, one_error, run
from krakenstream.core.bars import BAR_COLUMNS
from krakenstream.core.times import iso_ms


def test_bars(live: LiveDaemon, user_home: Path, tmp_path: Path) -> None:
    r = run(["bars", FULL, "--every", "1h", "--json"], user_home, live.url)
    assert r.exit_code == 0, r.output
    answer = orjson.loads(r.stdout)
    assert answer["pair"] == FULL and answer["every"] == "1h"
    found = answer["bars"]
    assert sum(b["snapshots"] for b in found) == N_FULL and len(found) == 3
    assert found[0]["time"] == iso_ms(FULL_START_MS - FULL_START_MS % 3_600_000)
    assert all(b["gap"] for b in found)  # the store's rows are marked every 500
    r = run(["bars", FULL, "--every", "5m", "--until", str(FULL_START_MS + 599_999)],
            user_home, live.url)
    assert r.exit_code == 0, r.output
    assert "2 bars of 5m" in r.stdout and "open" in r.stdout
    out = tmp_path / "ada.csv"
    r = run(["bars", FULL, "--csv", str(out)], user_home, live.url)
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert lines[0].split(",") == list(BAR_COLUMNS) and len(lines) == 1 + 167
    assert f"wrote 167 bars to {out}" in r.stderr
    one_error(run(["bars", FULL, "--every", "7x"], user_home, live.url),
              "every '7x': expected a count and a unit, such as 1m, 5m or 1h", "units: s, m, h, d")
    one_error(run(["bars", FULL, "--json", "--csv", "-"], user_home, live.url),
              "choose one of --json and --csv", None)
    r = run(["bars", "DOGE/XYZ"], user_home, live.url)
    assert r.exit_code == 1 and "hint: kms pairs lists the tracked pairs" in r.stderr
