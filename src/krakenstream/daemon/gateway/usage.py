"""The archive's disk use, as ``/api/pairs`` and ``/health`` show it: per pair (bytes, UTC
days, bytes a day) and per UTC day (all pairs).

Counting it means listing every file of the archive (thousands of pairs × days × 24 hourly
files), so :class:`ArchiveUsage` counts in a worker thread at most once per :data:`TTL_S`
and shares one count between the requests that ask meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ...store.archive import Archive, DayUsage

#: seconds a count of the archive's files is reused
TTL_S = 60.0
#: UTC days /health lists (the newest)
HEALTH_DAYS = 14


@dataclass(frozen=True)
class Usage:
    """One count of the archive."""

    days: list[DayUsage]
    per_pair: dict[str, tuple[int, int]] = field(default_factory=dict)  # bytes, days

    @classmethod
    def of(cls, days: list[DayUsage]) -> Usage:
        per_pair: dict[str, tuple[int, int]] = {}
        for d in days:
            size, n = per_pair.get(d.pair, (0, 0))
            per_pair[d.pair] = (size + d.bytes, n + 1)
        return cls(days, per_pair)

    def pair(self, pair: str) -> dict[str, Any]:
        """What ``/api/pairs`` says of a pair's archive."""
        size, n = self.per_pair.get(pair, (0, 0))
        return {"archive_bytes": size, "archive_days": n,
                "archive_bytes_per_day": size // n if n else 0}

    def health(self, path: str, newest: int = HEALTH_DAYS) -> dict[str, Any]:
        """What ``/health`` says of the archive: totals, and the newest days, all pairs."""
        by_day: dict[date, list[int]] = {}
        for d in self.days:
            entry = by_day.setdefault(d.day, [0, 0, 0])
            entry[0] += d.bytes
            entry[1] += d.files
            entry[2] += 1
        days = [{"date": day.isoformat(), "bytes": b, "files": f, "pairs": p}
                for day, (b, f, p) in sorted(by_day.items(), reverse=True)[:newest]]
        return {"path": path, "bytes": sum(d.bytes for d in self.days),
                "files": sum(d.files for d in self.days), "pairs": len(self.per_pair),
                "days": days}


class ArchiveUsage:
    """The archive's disk use, counted at most every ``ttl`` seconds (see the module)."""

    def __init__(self, archive: Archive, ttl: float = TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.archive = archive
        self.ttl = ttl
        self._clock = clock
        self._usage: Usage | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> Usage:
        async with self._lock:
            if self._usage is None or self._clock() - self._at >= self.ttl:
                days = await asyncio.to_thread(self.archive.usage)
                self._usage, self._at = Usage.of(days), self._clock()
            return self._usage
