"""Kraken's book checksum: CRC32 of the top 10 asks then the top 10 bids.

Each level contributes its price then its qty, written in fixed point at the pair's precision
with the point removed and leading zeros stripped. With scaled integers that is ``str(n)``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from decimal import Decimal

from .events import Level
from .numbers import scale_decimal

CHECKSUM_LEVELS = 10


def levels_token(levels: Iterable[Level]) -> str:
    """The checksum text of some levels (already scaled, best first)."""
    return "".join([f"{p}{q}" for p, q in levels])


def checksum(asks: Iterable[Level], bids: Iterable[Level]) -> int:
    """CRC32 of scaled levels: asks ascending, bids descending, 10 of each at most."""
    a = list(asks)[:CHECKSUM_LEVELS]
    b = list(bids)[:CHECKSUM_LEVELS]
    return zlib.crc32((levels_token(a) + levels_token(b)).encode())


def checksum_decimal(
    asks: Iterable[tuple[Decimal | str, Decimal | str]],
    bids: Iterable[tuple[Decimal | str, Decimal | str]],
    price_precision: int,
    qty_precision: int,
) -> int:
    """The same from decimal values (text or Decimal), for vectors and external callers."""

    def scaled(levels: Iterable[tuple[Decimal | str, Decimal | str]]) -> list[Level]:
        return [
            (scale_decimal(Decimal(p), price_precision), scale_decimal(Decimal(q), qty_precision))
            for p, q in levels
        ]

    return checksum(scaled(asks), scaled(bids))
