"""``kms latest`` and ``kms history`` against the session's daemon: tables, exports of the full
10,000-snapshot pair, time windows, refusals."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson

from cli_support import FULL, FULL_START_MS, N_FULL, LiveDaemon, one_error, run
from krakenstream.cli.output import count_rows
from krakenstream.core.snapshot import CSV_COLUMNS, Snapshot
from krakenstream.core.wide import wide_columns, wide_row


def test_latest(live: LiveDaemon, user_home: Path, token: str) -> None:
    live.wait_snapshots("ETH/USD", token)
    r = run(["latest", "ETH/USD", "--json"], user_home, live.url)
    assert r.exit_code == 0, r.output
    snap = Snapshot.from_dict(orjson.loads(r.stdout))
    assert snap.pair == "ETH/USD" and snap.bids and snap.asks
    r = run(["latest", "eth-usd"], user_home, live.url)
    assert r.exit_code == 0, r.output
    for expected in ("ETH/USD", "best bid / ask", "spread", "bps", "mid", "checksum", "cum"):
        assert expected in r.stdout, expected


def test_unknown_pair_gets_the_gateways_message(live: LiveDaemon, user_home: Path) -> None:
    for args in (["latest", "DOGE/XYZ"], ["history", "DOGE/XYZ"],
                 ["history", "DOGE/XYZ", "--csv", "-"]):
        r = run(args, user_home, live.url)
        assert r.exit_code == 1, r.output
        assert r.stderr.startswith("error: ") and "DOGE/XYZ" in r.stderr
        assert r.stderr.strip().endswith("hint: kms pairs lists the tracked pairs")
        assert r.stdout == ""


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_ten_thousand_rows_csv_equals_json(
    live: LiveDaemon, user_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ada.csv"
    r = run(["history", FULL, "--csv", str(out), "--layout", "levels"], user_home, live.url)
    assert r.exit_code == 0, r.output
    assert f"wrote {N_FULL} snapshots to {out}" in r.stderr
    rows = _csv_rows(out.read_text())
    r = run(["history", FULL, "--csv", str(tmp_path / "wide.csv")], user_home, live.url)
    assert r.exit_code == 0, r.output
    wide = _csv_rows((tmp_path / "wide.csv").read_text())
    assert rows[0] == CSV_COLUMNS
    assert len(rows) == N_FULL + 1
    assert not list(tmp_path.glob(".*.part"))

    r = run(["history", FULL, "--json"], user_home, live.url)
    assert r.exit_code == 0
    doc = orjson.loads(r.stdout)
    assert doc["pair"] == FULL and doc["order"] == "desc"
    snaps = [Snapshot.from_dict(s) for s in doc["snapshots"]]
    assert len(snaps) == N_FULL
    assert rows[1:] == [s.csv_row() for s in snaps]
    assert wide[0] == wide_columns(10) and wide[1:] == [wide_row(s, 10) for s in snaps]
    assert snaps[0].seq == N_FULL and snaps[-1].seq == 1  # newest first
    assert rows[1][0] == "2025-11-24T18:46:39.000Z"  # ISO 8601 UTC: start + 9,999 s


def test_a_file_name_with_brackets_is_named_as_typed(
    live: LiveDaemon, user_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eth [bold]x[red].csv"
    r = run(["history", FULL, "--csv", str(out), "--limit", "2"], user_home, live.url)
    assert r.exit_code == 0, r.output
    assert f"wrote 2 snapshots to {out}" in r.stderr and len(_csv_rows(out.read_text())) == 3


def test_history_csv_to_stdout_and_ndjson(live: LiveDaemon, user_home: Path) -> None:
    r = run(["history", FULL, "--csv", "-", "--limit", "3", "--order", "asc", "--layout",
             "levels"], user_home, live.url)
    assert r.exit_code == 0, r.output
    rows = _csv_rows(r.stdout)
    assert rows[0] == CSV_COLUMNS and [row[2] for row in rows[1:]] == ["1", "2", "3"]
    r = run(["history", FULL, "--csv", "-", "--limit", "3", "--order", "asc", "--depth", "1"],
            user_home, live.url)
    wide = _csv_rows(r.stdout)
    assert wide[0] == wide_columns(1) and [row[2] for row in wide[1:]] == ["1", "2", "3"]
    one_error(run(["history", FULL, "--csv", "-", "--layout", "tall"], user_home, live.url),
              "--layout 'tall': expected wide or levels", None)
    r = run(["history", FULL, "--ndjson", "--limit", "3", "--order", "asc"], user_home,
            live.url)
    lines = r.stdout.splitlines()
    assert [Snapshot.from_json(line).csv_row() for line in lines] == rows[1:]


def test_history_range(live: LiveDaemon, user_home: Path) -> None:
    # seconds 100..109 after the start, both ends included; one ISO, one epoch ms
    r = run(["history", FULL, "--ndjson", "--since", "2025-11-24T16:01:40Z", "--until",
             str(FULL_START_MS + 109_000), "--order", "asc"], user_home, live.url)
    assert r.exit_code == 0, r.output
    assert [orjson.loads(line)["seq"] for line in r.stdout.splitlines()] == list(range(101, 111))
    # the same window in epoch seconds, which were once read as milliseconds (everything)
    r = run(["history", FULL, "--ndjson", "--since", str(FULL_START_MS // 1000 + 100),
             "--until", str(FULL_START_MS // 1000 + 109), "--order", "asc"], user_home, live.url)
    assert [orjson.loads(line)["seq"] for line in r.stdout.splitlines()] == list(range(101, 111))
    r = run(["history", FULL, "--since", "yesterday"], user_home, live.url)
    one_error(r, "--since 'yesterday'", "e.g. --since 2025-11-25T17:00:00Z, --since "
              "1764090000000 (epoch ms), --since 1764090000 (epoch s), --since 1h")


def test_history_table(live: LiveDaemon, user_home: Path) -> None:
    r = run(["history", FULL], user_home, live.url)
    assert r.exit_code == 0, r.output
    assert f"{FULL}: 50 snapshots, newest first" in r.stdout
    assert r.stdout.count("2025-11-24T") == 50
    assert "more snapshots are kept" in r.stderr
    r = run(["history", FULL, "--limit", "2", "--order", "asc"], user_home, live.url)
    assert f"{FULL}: 2 snapshots, oldest first" in r.stdout
    assert "2025-11-24T16:00:00.000Z" in r.stdout and "more snapshots" not in r.stderr


def test_history_bad_options(live: LiveDaemon, user_home: Path) -> None:
    one_error(run(["history", FULL, "--json", "--ndjson"], user_home, live.url),
              "choose one of --json, --ndjson and --csv", None)
    one_error(run(["history", FULL, "--order", "sideways"], user_home, live.url),
              "--order 'sideways': expected asc or desc", None)
    r = run(["history", FULL, "--csv", str(user_home)], user_home, live.url)
    assert r.exit_code == 1 and "is a folder" in r.stderr


def test_count_rows() -> None:
    assert count_rows(b"a,b\r\n1,2\r\n3,") == 2
    assert count_rows(b"") == 0


def test_history_in_80_columns_shows_whole_numbers(live: LiveDaemon, user_home: Path) -> None:
    r = run(["history", FULL, "--limit", "5", "--order", "asc"], user_home, live.url,
            columns=80)
    assert r.exit_code == 0, r.output
    assert "…" not in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    first = orjson.loads(run(["history", FULL, "--limit", "1", "--order", "asc", "--json"],
                             user_home, live.url).stdout)["snapshots"][0]
    row = next(line.split() for line in r.stdout.splitlines() if first["time"] in line)
    assert first["best_bid"] in row and first["best_ask"] in row
