"""``store/archive/layout.py``: the archive's names say where a file belongs and what it holds;
anything else in the folder (a file being written, a stranger's) is not taken for ours."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from krakenstream.store.archive import layout

ROOT = Path("/archive")


def test_a_files_path_round_trips_through_its_names() -> None:
    day = layout.utc_date(1_795_600_800_000)
    assert day == date(2026, 11, 25)
    folder = layout.date_dir(ROOT, "BTC/USD", day)
    assert folder == ROOT / "pair=BTC%2FUSD" / "date=2026-11-25"  # Hive keys, URL-encoded
    name = layout.file_name(1_795_600_800_000, 1_795_604_399_000, "k3f9a1")
    assert name == "1795600800000-1795604399000-k3f9a1.parquet"
    assert layout.parse_pair_dir(folder.parent.name) == "BTC/USD"
    assert layout.parse_date_dir(folder.name) == day
    f = layout.parse_file(folder / name, "BTC/USD", day)
    assert f == layout.ArchiveFile(folder / name, "BTC/USD", day, 1_795_600_800_000,
                                   1_795_604_399_000, "k3f9a1")


def test_days_are_utc_and_clamped() -> None:
    assert layout.day_start_ms(date(2026, 11, 25)) == 1_795_564_800_000
    last_ms_of_day = layout.day_start_ms(date(2026, 11, 26)) - 1
    assert layout.utc_date(last_ms_of_day) == date(2026, 11, 25)
    assert layout.utc_date(last_ms_of_day + 1) == date(2026, 11, 26)
    assert layout.utc_date(-5) == date(1970, 1, 1)
    assert layout.utc_date(10**17) == date(9999, 12, 31)
    assert layout.DAY_MS == layout.day_start_ms(date(1970, 1, 2))


@pytest.mark.parametrize("name", [
    "1-2-k3f9a1.parquet.tmp",        # not a parquet file
    ".1-2-k3f9a1.parquet.abc123.tmp",  # one being written (temp_name's shape)
    "2-1-k3f9a1.parquet",            # its range backwards
    "1-2-K3F9A1.parquet",            # a writer id of upper case
    "a-2-k3f9a1.parquet",
    "1-2.parquet",
])
def test_names_that_are_not_ours_are_skipped(name: str) -> None:
    assert layout.parse_file(ROOT / name, "BTC/USD", date(2026, 1, 1)) is None


def test_temp_names_hide_and_differ() -> None:
    final = layout.file_name(1, 2, "w1")
    a, b = layout.temp_name(final), layout.temp_name(final)
    assert a.startswith(f".{final}.") and a.endswith(".tmp") and a != b
    assert layout.parse_file(ROOT / a, "X/Y", date(2026, 1, 1)) is None


def test_directory_names_other_than_ours_are_none() -> None:
    assert layout.parse_pair_dir("BTC%2FUSD") is None
    assert layout.parse_date_dir("date=2026-13-01") is None  # the shape, not a date
    assert layout.parse_date_dir("day=2026-01-01") is None


def test_writer_ids_are_checked_and_fresh_ones_pass() -> None:
    ids = {layout.new_writer_id() for _ in range(20)}
    assert len(ids) == 20 and all(layout.check_writer_id(w) == w for w in ids)
    for bad in ("", "A1", "a-b", "x" * 33):
        with pytest.raises(ValueError, match="1-32 lower-case letters and digits"):
            layout.check_writer_id(bad)


def test_a_file_overlaps_a_range_it_shares_a_millisecond_with() -> None:
    f = layout.ArchiveFile(ROOT / "x", "BTC/USD", date(2026, 1, 1), 100, 200, "w")
    assert f.overlaps(200, 300) and f.overlaps(0, 100) and f.overlaps(150, 160)
    assert not f.overlaps(201, 300) and not f.overlaps(0, 99)
