"""The compact stored form of a snapshot: a version byte, then msgpack of scaled integers.

A depth-10 snapshot as JSON (``Snapshot.to_json()``) is about 900 bytes: every price and size
written out as decimal text, the derived metrics written beside the levels they come from,
the pair and the key names repeated in every row. Stored this way it costs 1,089 bytes a
snapshot in Redis (10.7 MiB per pair at 10,000 snapshots). The compact form keeps only what
cannot be derived, as integers, and lets msgpack give each one the fewest bytes it needs:

``0x01`` then the msgpack array ``[ts, seq, origin, gap_before, price_precision,
qty_precision, checksum, exchange_ts, bids, asks]`` where

* ``bids`` and ``asks`` are flat lists ``[price, qty, step, qty, step, qty, ...]`` of scaled
  integers: the first price absolute (the first ask as its distance from the first bid, the
  spread, when there are bids), each next one as its step from the one before (away from
  the touch, so positive: one byte for most books); quantities as they are;
* ``exchange_ts`` is Kraken's timestamp as integer microseconds since the epoch when that
  integer gives back exactly the same text (``2023-07-30T15:30:49.008834Z``), else the text
  itself (anything else Kraken might send is kept as it was), or nil;
* no pair (it is the key, in both stores) and no derived metric (computed when read, by the
  same functions :class:`~.snapshot.Snapshot` uses, so an answer is byte for byte what the
  JSON format gave).

The first byte tells the formats apart: JSON rows (``{``), the format before this one, are
still read (:func:`~.record.decode_record`). Round trip is exact: every field is an integer
or the original text; ``tests/test_core_codec.py`` holds it against random books.

msgspec decodes the array straight into :class:`CompactRecord`, checking every type in C, so
a row costs a few microseconds to read; rendering it (formatting 40 numbers) is the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import final

import msgspec
import orjson

from .events import Level
from .snapshot import Snapshot, csv_fields, csv_line, snapshot_dict
from .times import iso_us

#: the first byte of a compact row (a JSON row starts with "{")
MAGIC = b"\x01"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: the microseconds a datetime can hold (years 1 to 9999): a stored integer outside is damage
_US_MIN = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _MICROSECOND
_US_MAX = (datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC) - _EPOCH) // _MICROSECOND
_ENCODER = msgspec.msgpack.Encoder()


class CompactRecord(msgspec.Struct, array_like=True, frozen=True):
    """A compact row decoded (the fields in stored order); a :class:`~.record.Record`."""

    ts: int
    seq: int
    origin: str
    #: the flag the publisher set
    gap_before: bool
    price_precision: int
    qty_precision: int
    checksum: int
    exchange: int | str | None
    bids: list[int]
    asks: list[int]

    def levels(self) -> tuple[list[Level], list[Level]]:
        """Bids and asks as (price, qty) scaled integers, best first."""
        bids = _undelta(self.bids, -1, None)
        asks = _undelta(self.asks, 1, bids[0][0] if bids else None)
        return bids, asks

    @property
    def exchange_ts(self) -> str | None:
        ex = self.exchange
        return iso_us(ex) if type(ex) is int else ex  # type: ignore[return-value]

    def json(self, pair: str, mark: bool) -> bytes:
        bids, asks = self.levels()
        return orjson.dumps(snapshot_dict(
            pair, self.ts, self.exchange_ts, self.seq, mark, self.checksum,
            self.price_precision, self.qty_precision, bids, asks, self.origin))

    def csv(self, pair: str, mark: bool) -> str:
        bids, asks = self.levels()
        return csv_line(csv_fields(
            pair, self.ts, self.exchange_ts, self.seq, mark, self.checksum,
            self.price_precision, self.qty_precision, bids, asks))

    def snapshot(self, pair: str, mark: bool) -> Snapshot:
        bids, asks = self.levels()
        return Snapshot(
            pair=pair, ts=self.ts, exchange_ts=self.exchange_ts, seq=self.seq,
            price_precision=self.price_precision, qty_precision=self.qty_precision,
            bids=tuple(bids), asks=tuple(asks), checksum=self.checksum, gap_before=mark,
            origin=self.origin,
        )


_DECODER = msgspec.msgpack.Decoder(CompactRecord)


def encode(snap: Snapshot) -> bytes:
    """The compact form of ``snap`` (without its pair: the store's key holds it).

    A number msgpack cannot hold (beyond 64 bits: no market has one, but a Snapshot can)
    makes this fall back to the snapshot's JSON, which every reader still reads."""
    bids, asks = snap.bids, snap.asks
    try:
        return MAGIC + _ENCODER.encode((
            snap.ts, snap.seq, snap.origin, snap.gap_before, snap.price_precision,
            snap.qty_precision, snap.checksum, exchange_int(snap.exchange_ts),
            _delta(bids, -1, None), _delta(asks, 1, bids[0][0] if bids else None),
        ))
    except OverflowError:
        return snap.to_json()


def decode(data: bytes) -> CompactRecord:
    """A compact row back; ValueError if it is not one."""
    if data[:1] != MAGIC:
        raise ValueError("not a compact snapshot row")
    try:
        rec = _DECODER.decode(memoryview(data)[1:])
    except msgspec.MsgspecError as exc:
        raise ValueError(f"malformed compact snapshot row: {exc}") from exc
    ex = rec.exchange
    if len(rec.bids) % 2 or len(rec.asks) % 2 or not (
            0 <= rec.price_precision <= 30 and 0 <= rec.qty_precision <= 30) or (
            type(ex) is int and not _US_MIN <= ex <= _US_MAX):
        raise ValueError("malformed compact snapshot row: levels, precisions or time")
    return rec


@final
class Encoded:
    """One snapshot in its stored form (:func:`encode`) with the pair and ts a store keys it
    by, the snapshot itself built only when asked for (:meth:`snapshot`).

    The Kafka bus carries snapshots in the very form history stores, so a reader that only
    passes them on (the history writer into Redis) or needs a few of them (the gateway's
    tap: the pairs someone streams) takes these instead of snapshots: turning the bytes
    into a :class:`~.snapshot.Snapshot` and back cost ~20 µs a record, 3,000 a second.
    ``data`` is always what ``encode(snapshot())`` gives or an equivalent compact row."""

    __slots__ = ("pair", "ts", "data", "_record", "_snapshot")

    def __init__(self, pair: str, ts: int, data: bytes, *, record: CompactRecord | None = None,
                 snapshot: Snapshot | None = None) -> None:
        self.pair = pair
        self.ts = ts
        self.data = data
        self._record = record
        self._snapshot = snapshot

    @classmethod
    def of(cls, snap: Snapshot) -> Encoded:
        """``snap`` encoded (it is kept: :meth:`snapshot` answers it)."""
        return cls(snap.pair, snap.ts, encode(snap), snapshot=snap)

    @classmethod
    def read(cls, pair: str, data: bytes) -> Encoded:
        """A compact row of ``pair`` as it came, checked as :func:`decode` checks it (a
        row that passes always gives its snapshot); a JSON snapshot (the form written before
        this one) is decoded and encoded anew. ValueError when ``data`` is neither."""
        if data[:1] == MAGIC:
            rec = decode(data)
            return cls(pair, rec.ts, data, record=rec)
        return cls.of(Snapshot.from_json(data))

    def snapshot(self) -> Snapshot:
        """The snapshot (built once, then kept), ``gap_before`` as its publisher set it."""
        snap = self._snapshot
        if snap is None:
            rec = self._record
            if rec is None:
                rec = self._record = decode(self.data)
            snap = self._snapshot = rec.snapshot(self.pair, rec.gap_before)
        return snap

    def __repr__(self) -> str:
        return f"Encoded({self.pair!r}, ts={self.ts}, {len(self.data)} bytes)"


def _delta(levels: tuple[Level, ...], away: int, touch: int | None) -> list[int]:
    """``[p0, q0, s1, q1, ...]``: the first price (less ``touch`` when given), then each
    price's step away from the touch (``away``: -1 for bids, which fall, +1 for asks)."""
    out: list[int] = []
    prev = touch
    for p, q in levels:
        out.append(p if prev is None else (p - prev) * away)
        out.append(q)
        prev = p
    return out


def _undelta(flat: list[int], away: int, touch: int | None) -> list[Level]:
    out: list[Level] = []
    if not flat:
        return out
    p = flat[0] if touch is None else touch + flat[0]
    out.append((p, flat[1]))
    for i in range(2, len(flat), 2):
        p += away * flat[i]
        out.append((p, flat[i + 1]))
    return out


#: midnight of each date seen in an exact timestamp, epoch microseconds, by its text
#: (``2023-07-30``): a book's timestamps share one date, so :func:`exchange_int` seldom
#: parses one as a whole
_MIDNIGHTS: dict[str, int] = {}
#: the start of each second seen in an exact timestamp, epoch microseconds, by its text up to
#: the fraction (``2023-07-30T15:29:58.``): a tick's 3,000 snapshots carry timestamps of a
#: few seconds, so most are their second's start plus their six fraction digits
_SECONDS: dict[str, int] = {}
_DAY_US = 86_400_000_000
#: either cache is emptied past this many entries (a long run sees a new second every second)
_CACHED = 4096


def exchange_int(text: str | None) -> int | str | None:
    """Kraken's timestamp as integer microseconds when that gives back exactly ``text``.

    Every snapshot stored needs this (3,000 a second at 3,000 pairs): a timestamp of a second
    already seen exact is that second's start plus its fraction digits (0.4 µs, against 1.4
    µs reading the fields of a date already seen, and five times that for
    ``fromisoformat`` and writing the text back); one of a date already seen is read by its
    fixed fields. Each is exact when those are ASCII digits in range, which is what
    :func:`exchange_int_parsed` would have found. Anything else takes that whole way."""
    if text is None or len(text) != 27 or text[-1] != "Z":
        return text
    second = _SECONDS.get(text[:20])
    if second is not None:
        fraction = text[20:26]
        if fraction.isdigit() and fraction.isascii():
            return second + int(fraction)
    us = _by_fields(text)
    if type(us) is int:
        _remember(_SECONDS, text[:20], us - us % 1_000_000)
    return us


def _by_fields(text: str) -> int | str:
    """:func:`exchange_int` of a 27-character text ending in ``Z``, its date's midnight known
    or learnt."""
    midnight = _MIDNIGHTS.get(text[:10])
    if (midnight is not None and text[10] == "T" and text[13] == ":" and text[16] == ":"
            and text[19] == "."):
        digits = text[11:13] + text[14:16] + text[17:19] + text[20:26]
        if digits.isdigit() and digits.isascii():
            h, m, s = int(digits[:2]), int(digits[2:4]), int(digits[4:6])
            if h < 24 and m < 60 and s < 60:
                return midnight + ((h * 60 + m) * 60 + s) * 1_000_000 + int(digits[6:])
    us = exchange_int_parsed(text)
    if type(us) is int:
        _remember(_MIDNIGHTS, text[:10], us - us % _DAY_US)
    return us


def _remember(cache: dict[str, int], key: str, value: int) -> None:
    """``cache[key] = value``, the cache emptied first when it holds more than
    :data:`_CACHED`."""
    if len(cache) > _CACHED:
        cache.clear()
    cache[key] = value


def exchange_int_parsed(text: str) -> int | str:
    """:func:`exchange_int` the whole way: parsed, then kept as an integer only when it
    gives back exactly ``text``."""
    try:
        us = (datetime.fromisoformat(text) - _EPOCH) // _MICROSECOND
    except (ValueError, TypeError, OverflowError):
        return text
    return us if iso_us(us) == text else text
