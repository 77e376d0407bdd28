"""``kms sim``: run the local Kraken v2 exchange simulator until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .common import errors_handled, fail, verbose

if TYPE_CHECKING:
    from ..sim.server import SimServer
    from ..sim.stats import FaultKind

log = logging.getLogger(__name__)


def sim(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0 picks a free one).")] = 8765,
    pairs: Annotated[
        str | None,
        typer.Option("--pairs", help="Extra pairs, comma-separated (BASE/QUOTE), besides the "
                     "default list."),
    ] = None,
    synthetic: Annotated[
        int, typer.Option("--synthetic", help="Add N synthetic pairs SYN0001/USD, SYN0002/USD... "
                     "(and some of them in EUR, USDT, BTC; 1 in 20 not online)")
    ] = 0,
    rate: Annotated[
        float, typer.Option("--rate", help="Book updates a second per subscribed pair.")
    ] = 10.0,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed for the market and random faults.")
    ] = None,
    fault_rate: Annotated[
        float, typer.Option("--fault-rate", help="Random faults a second (0: none).")
    ] = 0.0,
    faults: Annotated[
        str | None,
        typer.Option("--faults", help="Kinds of random fault, comma-separated: drop, corrupt, "
                     "stall, maintenance (default: all)."),
    ] = None,
    replay: Annotated[
        Path | None,
        typer.Option("--replay", help="Serve this recording (one raw frame per line) instead "
                     "of the random market."),
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", help="Replay speed: times real time (0: no pauses).")
    ] = 1.0,
) -> None:
    """Serve a Kraken WebSocket v2 exchange on ws://HOST:PORT/v2 until stopped.

    Prints the URL on one line once listening; exits 0 on SIGTERM or SIGINT.
    """
    import asyncio

    from ..sim.server import SimServer

    with errors_handled():
        if not 0 <= port <= 65535:
            raise fail(f"--port {port} is not a port number")
        if synthetic < 0 or rate <= 0 or fault_rate < 0 or speed < 0:
            raise fail("--synthetic, --fault-rate and --speed must not be negative, "
                       "and --rate must be positive")
        if replay is not None and not replay.is_file():
            raise fail(f"no such recording: {replay}")
        logging.basicConfig(
            level=logging.DEBUG if verbose() else logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
        )
        extra = [p.strip() for p in pairs.split(",") if p.strip()] if pairs else []
        server = SimServer(
            host=host, port=port, pairs=extra, synthetic=synthetic, rate=rate, seed=seed,
            fault_rate=fault_rate, fault_kinds=_fault_kinds(faults), replay=replay, speed=speed,
        )
        asyncio.run(_serve(server))


def _fault_kinds(text: str | None) -> tuple[FaultKind, ...]:
    from ..sim.stats import FAULT_KINDS

    if text is None:
        return FAULT_KINDS
    kinds: list[FaultKind] = []
    for word in (w.strip() for w in text.split(",")):
        kind = next((k for k in FAULT_KINDS if k == word), None)
        if kind is None:
            raise fail(f"--faults: unknown fault kind {word!r}; one of {', '.join(FAULT_KINDS)}")
        kinds.append(kind)
    return tuple(kinds)


async def _serve(server: SimServer) -> None:
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        typer.echo(server.url)
        await stop.wait()
        log.info("sim stopping: %s", server.stats)
