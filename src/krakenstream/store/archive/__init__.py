"""The Parquet archive: every stored snapshot kept beyond the window, on disk, for good.

The window store keeps 10,000 snapshots per pair (2.8 hours at one a second); the archive
keeps them all, in the files people's tools read: a Hive-partitioned Parquet dataset,
``<root>/pair=BTC%2FUSD/date=2026-11-25/<first ts>-<last ts>-<writer>.parquet``, zstd, one
row per snapshot in the wide layout (:mod:`krakenstream.core.wide`), rolled hourly (or every
``roll_rows`` rows), each file written whole and renamed into place. ``files`` reads and
writes the folder, ``columns`` converts snapshots to Arrow and back, ``roller`` keeps the
archive up to date with the window store, ``layout`` names things.

**Exact decimals: Parquet DECIMAL at the pair's scale, stored as INT64.** The alternative,
scaled integers with the scale in the file's metadata, costs the same bytes (both are INT64
on disk, delta-packed and zstd-compressed alike) but hands every reader a number that is
wrong unless it knows our convention: ``SELECT avg(bid_price_1)`` would answer in tenths of a
cent. DECIMAL carries its scale in the type, so DuckDB, pandas (``decimal.Decimal``) and
polars (``Decimal``) read exact prices with no convention to learn, and pyarrow reads them
back as ``decimal64``, whose bytes *are* the scaled integers (no Decimal objects on our hot
path). ``store_decimal_as_integer`` makes pyarrow write DECIMAL(≤18) as INT64 instead of a
16-byte fixed-length array. A column holding a value of more than 18 digits (a very large
quantity at 8 decimals) is DECIMAL(38, s) in that file only.

The price of per-pair scales: one column has different scales in different pairs' files.
Reading the whole folder at once therefore needs ``union_by_name=true`` in DuckDB (without
it DuckDB casts every file to the first file's type, and a PEPE price read as DECIMAL(18,1)
is 0.0: silently wrong), and pyarrow/pandas should be given one pair's folder. Reading one
pair — the common case — needs nothing. The documented one-liners do it that way.

**Why not hold the open roll in memory.** See :mod:`.roller`: the roll is cut from the window
store, which holds it anyway; memory stays flat whatever the number of pairs, and the
rebuild after a crash is the ordinary code path.
"""

from __future__ import annotations

from .files import Archive, DayUsage
from .layout import ArchiveFile, new_writer_id
from .roller import ArchiveRoller, RollerStats

__all__ = ["Archive", "ArchiveFile", "ArchiveRoller", "DayUsage", "RollerStats", "new_writer_id"]
