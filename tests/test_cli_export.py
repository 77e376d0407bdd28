"""``kms export`` against the session's daemon: several pairs into one Parquet or CSV file."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from cli_support import FULL, FULL_START_MS, N_FULL, LiveDaemon, one_error, run
from krakenstream.client import KmsClient
from krakenstream.core.numbers import to_decimal
from krakenstream.core.wide import wide_columns


def test_export_two_pairs(live: LiveDaemon, user_home: Path, token: str,
                          tmp_path: Path) -> None:
    newest = live.wait_snapshots("ETH/USD", token)
    until = str(newest["ts"])  # a window that no longer grows
    with KmsClient(live.url, token) as client:
        eth = list(client.history("ETH/USD", until=until, order="asc"))
    args = ["export", FULL, "eth-usd", "--since", str(FULL_START_MS), "--until", until]

    out = tmp_path / "two.parquet"
    r = run([*args, "--parquet", str(out)], user_home, live.url)
    assert r.exit_code == 0, r.output
    assert f"wrote {N_FULL + len(eth)} snapshots of 2 pairs to {out}" in r.stderr
    df = pd.read_parquet(out)
    assert list(df["pair"].unique()) == [FULL, "ETH/USD"]
    ada, got_eth = df[df["pair"] == FULL], df[df["pair"] == "ETH/USD"]
    assert list(ada["seq"]) == list(range(1, N_FULL + 1))  # oldest first
    assert list(got_eth["seq"]) == [s["seq"] for s in eth]
    assert list(got_eth["gap_before"]) == [s["gap_before"] for s in eth]
    # each pair's prices exact, in a column wide enough for both (4 and 2 decimals)
    assert ada["bid_price_1"].iloc[0] == to_decimal(2_000_000, 4)
    assert list(got_eth["mid"]) == [Decimal(s["mid"]) for s in eth]  # 3500.000 == 3500.00000
    assert pq.ParquetFile(out).metadata.num_rows == N_FULL + len(eth)
    assert not list(tmp_path.glob(".*"))  # no part file, no download left

    out = tmp_path / "two.csv"
    r = run([*args, "--csv", str(out), "--depth", "2"], user_home, live.url)
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == wide_columns(2) and len(rows) == 1 + N_FULL + len(eth)
    assert [row[1] for row in rows[1:]] == [FULL] * N_FULL + ["ETH/USD"] * len(eth)
    assert [row[2] for row in rows[1 + N_FULL:]] == [str(s["seq"]) for s in eth]

    one_error(run(["export", FULL], user_home, live.url),
              "choose one of --parquet FILE and --csv FILE",
              "e.g. kms export ETH/USD --since 1d --parquet eth.parquet")
    r = run(["export", FULL, "DOGE/XYZ", "--csv", str(tmp_path / "x.csv")], user_home,
            live.url)
    assert r.exit_code == 1 and "hint: kms pairs lists the tracked pairs" in r.stderr
    assert not (tmp_path / "x.csv").exists()
