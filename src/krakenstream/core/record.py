"""A stored snapshot read back: the fields the gap rule reads, and its three renderings.

History answers mark ``gap_before`` from the stored neighbours (:mod:`.gaps`), so a reader
needs each row's ``seq``, ``origin`` and published flag *before* it renders the row, and then
renders it with the mark it derived in place of the published flag. A :class:`Record` is that
step in between: decoded once, asked for ``seq``/``origin``/``gap_before``, then rendered as
the snapshot's JSON (:meth:`Record.json`, byte for byte what ``Snapshot.to_json()`` gives with
that mark), as its CSV line (:meth:`Record.csv`) or as a :class:`~.snapshot.Snapshot`.

:func:`decode_record` sniffs the first byte of the stored bytes: ``0x01`` is the compact form
every store writes (:mod:`.codec`, a :class:`~.codec.CompactRecord`), ``{`` a JSON object, the
format every store wrote before issue 12 (a :class:`JsonRecord`), still read as it is.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from . import codec
from .snapshot import SCHEMA_VERSION, Snapshot, csv_line, csv_row_from_dict


class Record(Protocol):
    """One stored snapshot, decoded enough for the gap rule (see the module)."""

    @property
    def seq(self) -> int: ...

    @property
    def origin(self) -> str: ...

    @property
    def gap_before(self) -> bool:
        """The flag its publisher set (stale, resync, restart, late tick)."""
        ...

    def json(self, pair: str, mark: bool) -> bytes:
        """``Snapshot.to_json()`` of this snapshot with ``gap_before = mark``."""
        ...

    def csv(self, pair: str, mark: bool) -> str:
        """Its CSV line (``Snapshot.csv_row()``, ending in a newline) with ``gap_before = mark``."""
        ...

    def snapshot(self, pair: str, mark: bool) -> Snapshot: ...


class JsonRecord:
    """A row stored as the snapshot's own JSON object (``Snapshot.to_json()``)."""

    __slots__ = ("data", "d")

    def __init__(self, data: bytes) -> None:
        try:
            d: Any = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"snapshot is not JSON: {exc}") from exc
        if not isinstance(d, dict):
            raise ValueError("snapshot is not a JSON object")
        if d.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise ValueError(f"unsupported snapshot schema {d.get('schema')!r}")
        if type(d.get("seq")) is not int:
            raise ValueError("malformed snapshot record: no integer seq")
        self.data = data
        self.d: dict[str, Any] = d

    @property
    def seq(self) -> int:
        return int(self.d["seq"])

    @property
    def origin(self) -> str:
        return str(self.d.get("origin") or "")

    @property
    def gap_before(self) -> bool:
        return bool(self.d.get("gap_before"))

    def json(self, pair: str, mark: bool) -> bytes:
        if mark == self.gap_before and "gap_before" in self.d:
            return self.data  # as stored: nothing to change
        return orjson.dumps({**self.d, "gap_before": mark})

    def csv(self, pair: str, mark: bool) -> str:
        try:
            fields = csv_row_from_dict({**self.d, "gap_before": mark})
        except (KeyError, TypeError, ValueError):  # not ours after all: the slow, sure way
            fields = self.snapshot(pair, mark).csv_row()
        return csv_line(fields)

    def snapshot(self, pair: str, mark: bool) -> Snapshot:
        return Snapshot.from_dict({**self.d, "gap_before": mark})


def decode_record(data: bytes) -> Record:
    """The stored bytes of one snapshot as a :class:`Record`; ValueError when they are not
    a snapshot this version can read."""
    head = data[:1]
    if head == codec.MAGIC:
        return codec.decode(data)
    if head == b"{":
        return JsonRecord(data)
    raise ValueError(f"unknown stored snapshot format (first byte {data[:1]!r})")
