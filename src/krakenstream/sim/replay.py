"""A recorded Kraken v2 file, made ready for the simulator to serve frame by frame.

Pure apart from reading the file. The book frames are kept as recorded (bytes, untouched) and
split by symbol, each with the delay since the previous frame of that symbol (from the
recorded timestamps). Precisions come from the file's ``instrument`` frame, or are inferred
from the snapshots' checksums by :class:`~krakenstream.core.session.BookSession`; the depth
of each symbol from its recorded subscribe ack, or else from its snapshot's size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from ..core.events import Precision
from ..core.pairs import VALID_DEPTHS
from ..core.session import BookSession
from ..errors import InputError
from .specs import increment

#: the longest pause between two recorded frames the simulator reproduces, in seconds
MAX_DELAY = 5.0


@dataclass
class Recording:
    """What the simulator serves in replay mode."""

    #: symbol -> [(seconds to wait before it, the raw frame)], in recorded order
    frames: dict[str, list[tuple[float, bytes]]] = field(default_factory=dict)
    precisions: dict[str, Precision] = field(default_factory=dict)
    depths: dict[str, int] = field(default_factory=dict)
    #: the instrument snapshot frame to send (the recorded one, or one made up)
    instrument: bytes = b""
    lines: int = 0
    skipped: int = 0


def load_recording(path: Path) -> Recording:
    """Read a recording (one raw frame per line); raises :class:`InputError` if unusable."""
    try:
        raw_lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read the recording {path}: {exc.strerror or exc}") from exc
    return parse_recording(raw_lines, name=str(path))


def parse_recording(raw_lines: list[bytes], *, name: str = "recording") -> Recording:
    rec = Recording()
    session = BookSession()
    last_ts: dict[str, float] = {}
    snapshot_sizes: dict[str, int] = {}
    for raw in raw_lines:
        line = raw.strip()
        if not line:
            continue
        rec.lines += 1
        session.receive(line)
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            rec.skipped += 1
            continue
        if type(obj) is not dict:
            rec.skipped += 1
            continue
        channel = obj.get("channel")
        if channel == "instrument" and obj.get("type") == "snapshot":
            rec.instrument = line
        elif channel == "book":
            _add_book_frame(rec, obj, line, last_ts, snapshot_sizes)
        elif obj.get("method") == "subscribe" and obj.get("success") is True:
            result = obj.get("result")
            if type(result) is dict and result.get("channel") == "book":
                sym, depth = result.get("symbol"), result.get("depth")
                if type(sym) is str and depth in VALID_DEPTHS:
                    rec.depths[sym] = depth
    if not rec.frames:
        raise InputError(f"{name} holds no book frames to replay",
                         hint="the file must hold raw Kraken v2 frames, one per line")
    for sym in rec.frames:
        prec = session.precisions.get(sym)
        if prec is None:
            raise InputError(f"{name}: cannot tell the precision of {sym} (no instrument "
                             "frame, and no snapshot whose checksum pins it down)")
        rec.precisions[sym] = prec
        if sym not in rec.depths:
            size = snapshot_sizes.get(sym, 10)
            rec.depths[sym] = next((d for d in VALID_DEPTHS if d >= size), VALID_DEPTHS[-1])
    if not rec.instrument:
        rec.instrument = orjson.dumps({"channel": "instrument", "type": "snapshot", "data": {
            "assets": [],
            "pairs": [_instrument_pair(sym, p) for sym, p in rec.precisions.items()],
        }})
    return rec


def _add_book_frame(
    rec: Recording, obj: dict[str, Any], line: bytes, last_ts: dict[str, float],
    snapshot_sizes: dict[str, int],
) -> None:
    data = obj.get("data")
    if type(data) is not list or not data or type(data[0]) is not dict:
        rec.skipped += 1
        return
    symbols = {d.get("symbol") for d in data if type(d) is dict}
    sym = data[0].get("symbol")
    if len(symbols) != 1 or type(sym) is not str:
        rec.skipped += 1  # one symbol per frame, as Kraken sends them
        return
    item = data[0]
    if obj.get("type") == "snapshot":
        size = max(len(item.get("bids") or ()), len(item.get("asks") or ()))
        snapshot_sizes.setdefault(sym, size)
    delay = 0.0
    ts = _seconds(item.get("timestamp"))
    if ts is not None:
        prev = last_ts.get(sym)
        if prev is not None:
            delay = min(MAX_DELAY, max(0.0, ts - prev))
        last_ts[sym] = ts
    rec.frames.setdefault(sym, []).append((delay, line))


def _seconds(ts: Any) -> float | None:
    if type(ts) is not str:
        return None
    try:
        return datetime.fromisoformat(ts).timestamp()
    except ValueError:
        return None


def _instrument_pair(symbol: str, prec: Precision) -> dict[str, Any]:
    base, _, quote = symbol.partition("/")
    return {
        "symbol": symbol, "base": base, "quote": quote, "status": "online",
        "price_precision": prec.price, "qty_precision": prec.qty,
        "price_increment": increment(prec.price), "qty_increment": increment(prec.qty),
    }


def corrupt_checksum(line: bytes) -> bytes:
    """The same frame with a wrong checksum (for the ``corrupt`` fault in replay mode)."""
    obj = orjson.loads(line)
    for item in obj.get("data", ()):
        if type(item) is dict and type(item.get("checksum")) is int:
            item["checksum"] ^= 1
    return orjson.dumps(obj)
