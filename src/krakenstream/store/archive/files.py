"""The archive folder: write files whole, find them by pair and time, read them back, prune.

Blocking file I/O throughout: async callers run these methods in a worker thread.

Writing. A file is written to ``.<name>.tmp`` beside its final name, flushed and fsynced,
renamed into place (atomic on POSIX), then the folder is fsynced so the rename itself
survives a power cut. A reader therefore sees a complete file or none; a crash mid-write
leaves only a hidden temp file, which :meth:`Archive.clean_temp` removes later.

Reading. A range read lists the pair's date folders inside the range (partition pruning),
keeps the files whose name says they overlap it (pruning by the time column without opening
a footer), reads them oldest first and filters the rows to the range. Files may overlap (two
writers archiving the same hour after a rebalance, or late rows): overlapping files are read
together, sorted and deduplicated by ``ts`` (the same ``(pair, ts)`` key as the window store).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ...core.snapshot import Snapshot
from .columns import from_table, reverse, to_table
from .layout import (
    ArchiveFile,
    check_writer_id,
    date_dir,
    file_name,
    new_writer_id,
    pair_dir,
    parse_date_dir,
    parse_file,
    parse_pair_dir,
    temp_name,
    utc_date,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: zstd level. Measured on hour files of the simulator's books (BENCHMARKS.md): 15 is 4-6 %
#: smaller than 9 (zstd's optimal parsing starts at 13 or so; 12 gains about 1 %), 19 and 22
#: no smaller than 15 for three to four times the time; 15 costs about 20 µs a snapshot more
#: than 9, in a worker thread, once an hour per pair
ZSTD_LEVEL = 15
#: a temp file older than this belongs to a writer that died (none takes an hour to write)
STALE_TEMP_S = 3600.0
#: the metrics that are prices (at the pair's price precision or finer)
PRICE_METRICS = {"best_bid", "best_ask", "spread", "mid", "microprice"}


@dataclass(frozen=True, slots=True)
class DayUsage:
    pair: str
    day: date
    files: int
    bytes: int


def column_encodings(table: pa.Table) -> dict[str, str]:
    """Per-column encodings, measured on hour files of the simulator's books (BENCHMARKS.md):

    * prices (levels and price metrics): BYTE_STREAM_SPLIT, 3-4 % smaller files than
      DELTA_BINARY_PACKED: a column's prices stay within a few ticks of each other, so the
      high bytes of each value form long runs that zstd squeezes to nothing;
    * ``time``, ``seq`` and the imbalance: DELTA_BINARY_PACKED (constant steps, small moves);
    * Kraken's timestamps share long prefixes: DELTA_BYTE_ARRAY;
    * sizes and the checksum are close to random: PLAIN + zstd is as good as anything
      (delta +10 %, byte-stream-split +15-20 %, dictionaries +20 % measured).
    """
    enc: dict[str, str] = {"time": "DELTA_BINARY_PACKED", "seq": "DELTA_BINARY_PACKED",
                           "exchange_ts": "DELTA_BYTE_ARRAY"}
    for field in table.schema:
        if not pa.types.is_decimal64(field.type):  # INT64 on disk; DECIMAL(38) stays PLAIN
            continue
        if field.name in PRICE_METRICS or "_price_" in field.name:
            enc[field.name] = "BYTE_STREAM_SPLIT"
        elif field.name == "imbalance":
            enc[field.name] = "DELTA_BINARY_PACKED"
    return enc


def write_parquet(table: pa.Table, where: Any, *, zstd_level: int = ZSTD_LEVEL,
                  dictionary: Sequence[str] = ("origin",)) -> None:
    """Write a wide table (:mod:`.columns`) the archive's way, to a path or a file object.

    Decimals go to disk as INT64; statistics only for ``time`` and ``seq`` (what readers
    prune on). No Arrow schema in the footer (``store_schema=False``): it repeats the
    Parquet schema, base64-encoded, 1.2 bytes a snapshot of an hour file; a reader sees the
    same types from Parquet's own, except DECIMAL(≤18), which pyarrow then reads as
    decimal128 (:func:`.columns.unscaled` takes either)."""
    pq.write_table(
        table, where, compression="zstd", compression_level=zstd_level,
        use_dictionary=list(dictionary), store_decimal_as_integer=True,
        column_encoding=column_encodings(table), write_statistics=["time", "seq"],
        store_schema=False,
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Archive:
    """The Parquet archive under ``root`` (see the package docstring)."""

    def __init__(self, root: str | Path, *, writer_id: str | None = None, depth: int = 10,
                 zstd_level: int = ZSTD_LEVEL) -> None:
        self.root = Path(root).expanduser()
        self.writer_id = check_writer_id(writer_id) if writer_id else new_writer_id()
        self.depth = depth
        self.zstd_level = zstd_level

    # -- writing ---------------------------------------------------------------------------

    def write(self, snaps: Sequence[Snapshot]) -> list[ArchiveFile]:
        """Write snapshots as complete files: one per pair, UTC date and precision, rows
        sorted by time, one row per ts. Returns the files written."""
        groups: dict[tuple[str, date, int, int], dict[int, Snapshot]] = {}
        for s in snaps:
            key = (s.pair, utc_date(s.ts), s.price_precision, s.qty_precision)
            groups.setdefault(key, {})[s.ts] = s
        written: list[ArchiveFile] = []
        for (pair, day, _, _), by_ts in sorted(groups.items()):
            rows = [by_ts[ts] for ts in sorted(by_ts)]
            written.append(self._write_file(pair, day, rows))
        return written

    def _write_file(self, pair: str, day: date, rows: list[Snapshot]) -> ArchiveFile:
        table = to_table(rows, self.depth)
        first = rows[0]
        table = table.replace_schema_metadata({
            "kms.schema": str(SCHEMA_VERSION), "kms.pair": pair,
            "kms.price_precision": str(first.price_precision),
            "kms.qty_precision": str(first.qty_precision), "kms.writer": self.writer_id,
        })
        folder = date_dir(self.root, pair, day)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / file_name(rows[0].ts, rows[-1].ts, self.writer_id)
        tmp = folder / temp_name(final.name)
        try:
            with open(tmp, "wb") as fh:
                write_parquet(table, fh, zstd_level=self.zstd_level)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(folder)
        found = parse_file(final, pair, day)
        assert found is not None  # we made the name
        return found

    def clean_temp(self, older_than_s: float = STALE_TEMP_S) -> int:
        """Remove temp files left by writers that died; returns how many."""
        cutoff = time.time() - older_than_s
        removed = 0
        for tmp in self.root.glob("pair=*/date=*/.*.tmp"):
            with contextlib.suppress(OSError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
        return removed

    # -- finding ---------------------------------------------------------------------------

    def pairs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = (parse_pair_dir(p.name) for p in self.root.iterdir() if p.is_dir())
        return sorted(p for p in found if p is not None)

    def _days(self, pair: str) -> list[tuple[date, Path]]:
        folder = pair_dir(self.root, pair)
        if not folder.is_dir():
            return []
        out = [(d, p) for p in folder.iterdir() if (d := parse_date_dir(p.name)) is not None]
        return sorted(out)

    def _files_of_day(self, pair: str, day: date, folder: Path) -> list[ArchiveFile]:
        out = [f for p in folder.glob("*.parquet") if (f := parse_file(p, pair, day))]
        return sorted(out, key=lambda f: (f.first_ts, f.last_ts, f.writer))

    def files(self, pair: str, lo: int, hi: int) -> list[ArchiveFile]:
        """The pair's files holding rows with ``lo <= ts <= hi``, oldest first."""
        if lo > hi:
            return []
        first, last = utc_date(lo), utc_date(hi)
        out: list[ArchiveFile] = []
        for day, folder in self._days(pair):
            if first <= day <= last:
                out += (f for f in self._files_of_day(pair, day, folder) if f.overlaps(lo, hi))
        return sorted(out, key=lambda f: (f.first_ts, f.last_ts, f.writer))

    def newest_ts(self, pair: str) -> int | None:
        """The newest archived ts of ``pair`` (None when nothing is archived)."""
        for day, folder in reversed(self._days(pair)):
            files = self._files_of_day(pair, day, folder)
            if files:
                return max(f.last_ts for f in files)
        return None

    # -- reading ---------------------------------------------------------------------------

    def read_table(self, f: ArchiveFile, lo: int | None = None,
                   hi: int | None = None) -> pa.Table:
        """A file's rows with ``lo <= ts <= hi``, as written (wide, no ``pair`` column)."""
        table = pq.ParquetFile(f.path).read()
        if lo is not None or hi is not None:
            t = table.column("time").cast(pa.int64())
            mask: Any = None
            if lo is not None:
                mask = pc.greater_equal(t, lo)
            if hi is not None:
                upper = pc.less_equal(t, hi)
                mask = upper if mask is None else pc.and_(mask, upper)
            table = table.filter(mask)
        return table

    def read_file(self, f: ArchiveFile, lo: int | None = None,
                  hi: int | None = None) -> list[Snapshot]:
        return from_table(self.read_table(f, lo, hi), f.pair)

    def tables(self, pair: str, lo: int, hi: int,
               order: Literal["asc", "desc"] = "asc") -> Iterator[pa.Table]:
        """As :meth:`chunks`, each chunk a wide table (as written: no ``pair`` column), for
        readers that work a column at a time (exports). Overlapping files of different
        precisions (Kraken changed the pair's tick within the hour) come as one table whose
        decimals take the finer scale: the same values, exactly."""
        clusters = _clusters(self.files(pair, lo, hi))
        if order == "desc":
            clusters.reverse()
        for cluster in clusters:
            parts = [self.read_table(f, lo, hi) for f in cluster]
            table = parts[0] if len(parts) == 1 else pa.concat_tables(
                parts, promote_options="permissive")
            if len(parts) > 1:  # sorted, one row per ts (the first file's: as chunks)
                table = table.take(pc.sort_indices(table, [("time", "ascending")]))
                t = table.column("time").cast(pa.int64()).combine_chunks()
                if len(t) > 1:
                    repeated = pc.equal(t.slice(1), t.slice(0, len(t) - 1))
                    keep = pa.concat_arrays([pa.array([True]), pc.invert(repeated)])
                    table = table.filter(keep)
            if table.num_rows:
                yield reverse(table) if order == "desc" else table

    def chunks(self, pair: str, lo: int, hi: int,
               order: Literal["asc", "desc"] = "asc") -> Iterator[list[Snapshot]]:
        """Every archived snapshot of ``pair`` with ``lo <= ts <= hi``, one ts once, in
        ``order``, a group of overlapping files (normally one file) per chunk."""
        clusters = _clusters(self.files(pair, lo, hi))
        if order == "desc":
            clusters.reverse()
        for cluster in clusters:
            by_ts: dict[int, Snapshot] = {}
            for f in cluster:
                for s in self.read_file(f, lo, hi):
                    by_ts.setdefault(s.ts, s)
            keys = sorted(by_ts, reverse=order == "desc")
            if keys:
                yield [by_ts[k] for k in keys]

    def before(self, pair: str, ts: int) -> Snapshot | None:
        """The newest archived snapshot of ``pair`` older than ``ts`` (the predecessor a
        range read needs to mark its first row)."""
        for chunk in self.chunks(pair, -(2**53), ts - 1, order="desc"):
            return chunk[0]
        return None

    # -- disk and retention ------------------------------------------------------------------

    def usage(self, pair: str | None = None) -> list[DayUsage]:
        """Bytes on disk per pair per UTC date (complete files only)."""
        out: list[DayUsage] = []
        for p in [pair] if pair is not None else self.pairs():
            for day, folder in self._days(p):
                files = self._files_of_day(p, day, folder)
                size = 0
                for f in files:
                    with contextlib.suppress(OSError):
                        size += f.path.stat().st_size
                out.append(DayUsage(p, day, len(files), size))
        return out

    def prune(self, keep_days: int, today: date) -> list[tuple[str, date]]:
        """Delete whole date partitions whose day ended more than ``keep_days`` days before
        ``today`` (0 keeps everything); returns the (pair, date) partitions removed."""
        if keep_days <= 0:
            return []
        cutoff = today - timedelta(days=keep_days)
        removed: list[tuple[str, date]] = []
        for pair in self.pairs():
            for day, folder in self._days(pair):
                if day < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append((pair, day))
        return removed


def _clusters(files: list[ArchiveFile]) -> list[list[ArchiveFile]]:
    """Files (sorted by first ts) grouped so that files whose ranges overlap are together."""
    out: list[list[ArchiveFile]] = []
    end: int | None = None
    for f in files:
        if out and end is not None and f.first_ts <= end:
            out[-1].append(f)
            end = max(end, f.last_ts)
        else:
            out.append([f])
            end = f.last_ts
    return out
