"""``kms record``: write a live feed's raw frames to a file that ``kms replay`` reads."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from ..config import as_options
from .common import errors_handled, fail, settings, verbose


def record(
    pairs: Annotated[
        list[str], typer.Argument(metavar="PAIR", help="Pairs to record, e.g. BTC/USD ETH/USD.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (replaced).")],
    url: Annotated[
        str | None, typer.Option("--url", help="Feed URL (default: kraken.url).")
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0.0, help="Stop after this many seconds (default: "
                     "until Ctrl-C)."),
    ] = None,
    depth: Annotated[
        int | None, typer.Option("--depth", help="Book depth: 10, 25, 100, 500 or 1000.")
    ] = None,
) -> None:
    """Record raw Kraken v2 frames, one per line (instrument frame and acks included)."""
    import asyncio

    from ..feed.options import FeedOptions
    from ..feed.recorder import record as record_feed

    with errors_handled():
        if not verbose():
            # reconnect chatter would bury the one-line result; the summary counts them
            logging.getLogger("krakenstream.feed").setLevel(logging.ERROR)
        if out.is_dir():
            raise fail(f"{out} is a folder; give a file name", "e.g. --out btc.jsonl")
        conf = settings({"kraken.url": url, "kraken.depth": depth})
        summary = asyncio.run(
            record_feed(pairs, out, options=as_options(conf.kraken, FeedOptions),
                        duration=duration, handle_signals=True)
        )
        typer.echo(summary.line())
