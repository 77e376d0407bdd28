"""Where the archive's files are and what their names say.

::

    <root>/pair=BTC%2FUSD/date=2026-11-25/1795600800000-1795604399000-k3f9a1.parquet
            └ Hive key: the pair,  └ UTC date   └ first ts   └ last ts     └ writer id
              URL-encoded (DuckDB, pyarrow, polars decode %2F back to BTC/USD)

A file's name carries the time range of its rows, so a range read opens only the files it
needs without reading a footer, and the writer id (one per writing process) keeps two writers
sharing the folder from ever choosing the same name. A file being written is
``.<name>.tmp`` in the same folder: hidden from pyarrow (leading dot) and from every
``*.parquet`` glob (DuckDB, polars), and renamed into place only once complete.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote, unquote

DAY_MS = 86_400_000
_NAME = re.compile(r"^(\d{1,16})-(\d{1,16})-([a-z0-9]{1,32})\.parquet$")
_PAIR_DIR = re.compile(r"^pair=(.+)$")
_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_WRITER = re.compile(r"^[a-z0-9]{1,32}$")


def new_writer_id() -> str:
    """A fresh writer id: 8 random lower-case hex digits."""
    return secrets.token_hex(4)


def check_writer_id(writer: str) -> str:
    if not _WRITER.match(writer):
        raise ValueError(f"archive writer id {writer!r}: 1-32 lower-case letters and digits")
    return writer


#: the ts range a date can be had for (1970 to the end of 9999)
_TS_LO, _TS_HI = 0, 253_402_300_799_999


def utc_date(ts: int) -> date:
    """The UTC date of epoch ms ``ts`` (clamped to 1970-01-01 … 9999-12-31)."""
    ts = min(max(ts, _TS_LO), _TS_HI)
    return datetime.fromtimestamp(ts // 1000, tz=UTC).date()


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


def pair_dir(root: Path, pair: str) -> Path:
    return root / f"pair={quote(pair, safe='')}"


def date_dir(root: Path, pair: str, day: date) -> Path:
    return pair_dir(root, pair) / f"date={day.isoformat()}"


def file_name(first_ts: int, last_ts: int, writer: str) -> str:
    return f"{first_ts}-{last_ts}-{writer}.parquet"


def temp_name(final: str) -> str:
    return f".{final}.{secrets.token_hex(3)}.tmp"


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """One complete file of the archive, known by its name."""

    path: Path
    pair: str
    day: date
    first_ts: int
    last_ts: int
    writer: str

    def overlaps(self, lo: int, hi: int) -> bool:
        return self.first_ts <= hi and self.last_ts >= lo


def parse_pair_dir(name: str) -> str | None:
    m = _PAIR_DIR.match(name)
    return unquote(m.group(1)) if m else None


def parse_date_dir(name: str) -> date | None:
    m = _DATE_DIR.match(name)
    if not m:
        return None
    try:
        return date.fromisoformat(m.group(1))
    except ValueError:
        return None


def parse_file(path: Path, pair: str, day: date) -> ArchiveFile | None:
    """The file's range and writer from its name; None for anything that is not ours."""
    m = _NAME.match(path.name)
    if not m:
        return None
    first, last = int(m.group(1)), int(m.group(2))
    if first > last:
        return None
    return ArchiveFile(path, pair, day, first, last, m.group(3))
