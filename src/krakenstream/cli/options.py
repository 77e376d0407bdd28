"""Options several commands share (a pair, a time window), and reading them.

Times are parsed by :mod:`krakenstream.core.times`, the same rules the gateway applies; here
only the words of a refusal are the CLI's own, naming the option that was mistyped.
"""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from ..core import times
from ..errors import InputError

PairArg = Annotated[str, typer.Argument(metavar="PAIR", help="Pair, e.g. ETH/USD or ETH-USD.")]
SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="From this time: ISO 8601, epoch ms or s, or a duration ago "
                 "(15m, 2h, 1d)."),
]
UntilOption = Annotated[
    str | None, typer.Option("--until", help="Up to this time (same forms as --since).")
]
LayoutOption = Annotated[
    str, typer.Option("--layout", help="CSV layout: wide (a column per price and size: "
                      "bid_price_1, bid_qty_1, ...) or levels (a side's levels in one cell, "
                      "price@qty).", show_default=True)
]
DepthOption = Annotated[
    int | None, typer.Option("--depth", min=1, help="Levels a side in wide CSV and Parquet "
                             "(default: the daemon's kraken.depth).")
]


def check_layout(text: str) -> Literal["wide", "levels"]:
    """``--layout``, refused in words unless wide or levels."""
    if text not in ("wide", "levels"):
        raise InputError(f"--layout {text!r}: expected wide or levels")
    return "wide" if text == "wide" else "levels"


def parse_when(text: str, *, now_ms: int, option: str = "--since") -> int:
    """A time option as epoch ms: ISO 8601 (UTC unless an offset is given), epoch ms or s, or a
    duration before now such as ``90s``, ``15m``, ``2h``, ``1d``
    (:func:`krakenstream.core.times.parse_time`), refused in words that name ``option``."""
    # one moment three ways (2025-11-25T17:00:00Z), then a duration
    hint = (f"e.g. {option} 2025-11-25T17:00:00Z, {option} 1764090000000 (epoch ms), "
            f"{option} 1764090000 (epoch s), {option} 1h")
    try:
        return times.parse_time(text, now_ms=now_ms)
    except times.TimeOutOfRange:
        raise InputError(f"{option} {text!r}: more than 300,000 years from 1970",
                         hint=hint) from None
    except times.BadTime:
        raise InputError(
            f"{option} {text!r}: expected an ISO 8601 time, epoch milliseconds or seconds, "
            "or a duration such as 15m", hint=hint,
        ) from None


def parse_window(since: str | None, until: str | None, *, now_ms: int
                 ) -> tuple[int | None, int | None]:
    """``--since`` and ``--until`` as epoch ms (None where not given)."""
    since_ms = parse_when(since, now_ms=now_ms) if since is not None else None
    until_ms = parse_when(until, now_ms=now_ms, option="--until") if until is not None else None
    return since_ms, until_ms
