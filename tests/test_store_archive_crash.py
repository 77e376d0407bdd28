"""kill -9 while the archive is writing: the folder stays readable and nothing is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from krakenstream.store.archive import Archive, ArchiveRoller
from krakenstream.store.sqlite import SQLiteHistoryStore

CHILD = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, sys.argv[2])
    from test_store_support import synthetic
    from krakenstream.store.archive import Archive, ArchiveRoller
    from krakenstream.store.sqlite import SQLiteHistoryStore

    async def main(root):
        store = SQLiteHistoryStore(root + "/history.sqlite3", history_limit=100_000)
        await store.open()
        roller = ArchiveRoller(Archive(root + "/archive", writer_id="child"), store,
                               history_limit=100_000, roll_rows=2_000)
        await roller.start()
        i = 0
        while True:  # until killed
            batch = [synthetic("ETH/USD", 1_699_920_000_000 + (i + k) * 1000, i + k)
                     for k in range(500)]
            await store.add(batch)
            roller.note(batch)
            await roller.keep_up()
            i += 500

    asyncio.run(main(sys.argv[1]))
""")


@pytest.mark.slow
def test_kill_9_during_a_roll_leaves_a_readable_archive(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    tests_dir = str(Path(__file__).parent)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), tests_dir])
    folder = tmp_path / "archive"
    try:
        deadline = time.monotonic() + 60
        caught = False
        while time.monotonic() < deadline and proc.poll() is None:
            temps = list(folder.glob("pair=*/date=*/.*.tmp"))
            done = list(folder.glob("pair=*/date=*/*.parquet"))
            if temps and len(done) >= 2:
                caught = True  # a file is being written right now
                break
            if len(done) >= 30:
                break  # never caught mid-write; a kill now is still mid-something
            time.sleep(0.001)
        assert proc.poll() is None, "the writer died by itself"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    print("killed while a temp file existed:", caught)

    archive = Archive(folder)
    files = archive.files("ETH/USD", 0, 2**53)
    assert len(files) >= 2
    for f in files:  # every visible file is whole: its rows are exactly what its name says
        rows = archive.read_file(f)
        assert rows[0].ts == f.first_ts and rows[-1].ts == f.last_ts
    df = pd.read_parquet(folder / "pair=ETH%2FUSD")
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{folder}/**/*.parquet', "
                   "hive_partitioning=true)").fetchall()[0][0]
    archived = [s for c in archive.chunks("ETH/USD", 0, 2**53) for s in c]
    assert len(df) == n == len(archived)
    assert [s.seq for s in archived] == list(range(len(archived)))  # a prefix, no hole

    async def rebuild() -> tuple[list[int], list[int]]:
        store = SQLiteHistoryStore(tmp_path / "history.sqlite3", history_limit=100_000)
        await store.open()
        try:
            stored = [s.ts async for s in store.history("ETH/USD", order="asc",
                                                        limit=100_000)]
            roller = ArchiveRoller(Archive(folder, writer_id="again"), store,
                                   history_limit=100_000)
            await roller.start()
            await roller.stop()
        finally:
            await store.close()
        return stored, [s.ts for c in archive.chunks("ETH/USD", 0, 2**53) for s in c]

    stored, after = asyncio.run(rebuild())
    # every row the writer stored is archived after the restart, once
    assert after == stored and len(stored) > len(archived)
