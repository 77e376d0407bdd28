"""``kms replay`` end to end through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from krakenstream.cli import app

runner = CliRunner()


def test_replay_json_check(shared_recording: Path) -> None:
    r = runner.invoke(app, ["replay", str(shared_recording), "--json", "--check"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["BTC/USD"]["verified"] == 510 and out["BTC/USD"]["mismatches"] == 0
    assert set(out["BTC/USD"]) >= {"frames", "verified", "mismatches", "crossed", "best_bid",
                                   "best_ask", "bid_levels", "ask_levels"}


def test_replay_table(shared_recording: Path) -> None:
    r = runner.invoke(app, ["replay", str(shared_recording)])
    assert r.exit_code == 0 and "BTC/USD" in r.stdout and "510" in r.stdout


def test_replay_table_in_80_columns_shows_whole_numbers(shared_recording: Path) -> None:
    stats = json.loads(runner.invoke(app, ["replay", str(shared_recording), "--json"]).stdout)
    r = runner.invoke(app, ["replay", str(shared_recording)], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert "…" not in r.stdout
    row = next(line.split() for line in r.stdout.splitlines() if "BTC/USD" in line)
    btc = stats["BTC/USD"]
    for value in (btc["frames"], btc["verified"], btc["best_bid"], btc["best_ask"]):
        assert str(value) in row, (value, row)


def test_check_fails_on_a_mismatch(shared_recording: Path, tmp_path: Path) -> None:
    lines = shared_recording.read_text().splitlines()
    lines[10] = lines[10].replace('"checksum":', '"checksum":1', 1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    r = runner.invoke(app, ["replay", str(bad), "--check", "--json"])
    assert r.exit_code == 1
    assert json.loads(r.stdout)["BTC/USD"]["mismatches"] >= 1


def test_garbage_lines_are_counted_not_fatal(shared_recording: Path, tmp_path: Path) -> None:
    lines = shared_recording.read_text().splitlines()
    f = tmp_path / "mixed.jsonl"
    f.write_text("\n".join([lines[0], "garbage{", lines[1], *lines[2:]]) + "\n")
    r = runner.invoke(app, ["replay", str(f), "--json", "--check"])
    assert r.exit_code == 0
    assert "1 bad frame" in r.stderr and "Traceback" not in r.output


def test_missing_empty_and_non_kraken_files(tmp_path: Path) -> None:
    r = runner.invoke(app, ["replay", str(tmp_path / "nope.jsonl")])
    assert r.exit_code == 1 and "no such file" in r.stderr and "Traceback" not in r.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    r = runner.invoke(app, ["replay", str(empty)])
    assert r.exit_code == 1 and "empty" in r.stderr
    junk = tmp_path / "junk.jsonl"
    junk.write_text("hello\nworld\n")
    r = runner.invoke(app, ["replay", str(junk)])
    assert r.exit_code == 1 and "no book frames" in r.stderr
    r = runner.invoke(app, ["replay", str(tmp_path)])
    assert r.exit_code == 1 and "folder" in r.stderr


def test_depth_override(shared_recording: Path) -> None:
    r = runner.invoke(app, ["replay", str(shared_recording), "--depth", "7"])
    assert r.exit_code == 1 and "--depth 7" in r.stderr
    r = runner.invoke(app, ["replay", str(shared_recording), "--depth", "25", "--json"])
    assert json.loads(r.stdout)["BTC/USD"]["mismatches"] >= 1
