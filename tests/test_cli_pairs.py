"""``kms pairs``, ``track``, ``untrack`` against the session's daemon."""

from __future__ import annotations

from pathlib import Path

import orjson

from cli_support import LiveDaemon, one_error, run


def test_pairs_track_untrack(live: LiveDaemon, user_home: Path) -> None:
    r = run(["pairs"], user_home, live.url)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    header = next(line for line in lines if "state" in line)
    assert "frames" in header and "snapshots" in header and "resyncs" in header
    assert any(line.split()[0] == "ETH/USD" for line in lines if line.strip())
    assert any(line.split()[0] == "BTC/USD" for line in lines if line.strip())

    r = run(["track", "SOL/USD"], user_home, live.url)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("tracking SOL/USD (feed ")
    one_error(run(["track", "sol-usd"], user_home, live.url), "SOL/USD", None)  # 409
    r = run(["pairs", "--json"], user_home, live.url)
    listed = {p["pair"]: p for p in orjson.loads(r.stdout)["pairs"]}
    assert {"ETH/USD", "BTC/USD", "SOL/USD"} <= set(listed)
    assert listed["ETH/USD"]["state"] in ("connecting", "live")

    r = run(["untrack", "SOL/USD"], user_home, live.url)
    assert r.exit_code == 0 and r.stdout.strip() == "stopped tracking SOL/USD"
    one_error(run(["untrack", "SOL/USD"], user_home, live.url), "SOL/USD", None)  # 404
    r = run(["pairs", "--json"], user_home, live.url)
    assert "SOL/USD" not in {p["pair"] for p in orjson.loads(r.stdout)["pairs"]}


def test_track_a_malformed_pair(live: LiveDaemon, user_home: Path) -> None:
    r = run(["track", "NOSLASH"], user_home, live.url)
    assert r.exit_code == 1 and r.stderr.startswith("error: ") and "NOSLASH" in r.stderr


def test_pairs_in_80_columns_show_whole_numbers(live: LiveDaemon, user_home: Path) -> None:
    listed = orjson.loads(run(["pairs", "--json"], user_home, live.url).stdout)["pairs"]
    r = run(["pairs"], user_home, live.url, columns=80)
    assert r.exit_code == 0, r.output
    assert "…" not in r.stdout
    eth = next(line.split() for line in r.stdout.splitlines() if line.split()[:1] == ["ETH/USD"])
    frames = next(p["frames"] for p in listed if p["pair"] == "ETH/USD")
    # a live feed counts on between the two calls: the number shown is whole, and not less
    assert any(cell.isdigit() and int(cell) >= frames for cell in eth), eth
