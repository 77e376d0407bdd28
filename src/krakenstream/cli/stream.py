"""``kms stream``: live order books from the daemon, one panel per pair, updated per snapshot.

The state and its frames are pure (:mod:`.live`); this loop reads the client's events, polls
``/api/pairs`` every few seconds for feed states, and redraws; every redraw happens on the
event loop's thread, so nothing reads the state while it changes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console, RenderableType

from ..core.pairs import spell_pair
from ..errors import KmsError, NotFound
from .common import err_console, errors_handled, out_console
from .server import ServerOption, open_client

if TYPE_CHECKING:
    from ..client import KmsClient
    from .live import StreamState

#: seconds between two polls of ``/api/pairs`` for feed states, and between two redraws
POLL_EVERY = 2.0
REDRAW_EVERY = 0.5
#: ``--once`` waits this long for every pair's first snapshot by default
ONCE_TIMEOUT = 10.0


# -- the loop ---------------------------------------------------------------------------------


def _check_tracked(client: KmsClient, pairs: Sequence[str],
                   entries: list[dict[str, Any]]) -> None:
    tracked = {spell_pair(str(e.get("pair", ""))) for e in entries}
    for pair in pairs:
        if spell_pair(pair) not in tracked:
            raise NotFound(
                f"{spell_pair(pair)} is not tracked by the daemon at {client.base_url}",
                hint=f"kms track {spell_pair(pair)}",
            )


async def run_stream(
    client: KmsClient,
    pairs: Sequence[str],
    *,
    depth: int = 10,
    once: bool = False,
    duration: float | None = None,
    first_frame_within: float = ONCE_TIMEOUT,
    console: Console | None = None,
) -> StreamState:
    """Show ``pairs`` until Ctrl-C, ``duration`` seconds, or (``once``) a first full frame
    (waiting at most ``first_frame_within`` seconds for it).

    Asks ``/api/pairs`` first, so a daemon that is down, a rejected token or an untracked
    pair fails at once with the daemon's message instead of an empty screen.
    """
    import asyncio

    from .live import StreamState, format_frame  # the client's event types, with it

    console = console or out_console
    # one connection per pair however often it is named: two would count each snapshot twice
    pairs = list(dict.fromkeys(spell_pair(p) for p in pairs))
    entries = await asyncio.to_thread(client.pairs)
    _check_tracked(client, pairs, entries)
    state = StreamState.for_pairs(pairs)
    state.apply_pairs(entries)

    def frame() -> RenderableType:
        return format_frame(state, depth=depth, now=time.monotonic(), wall=time.time())

    async with contextlib.aclosing(client.stream(pairs)) as events:
        if once:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(first_frame_within):
                    async for event in events:
                        state.apply(event, time.monotonic())
                        if state.ready():
                            break
            console.print(frame())
            return state
        from rich.live import Live

        with Live(frame(), console=console, auto_refresh=False, transient=False) as live:

            def redraw() -> None:
                live.update(frame(), refresh=True)

            async def tick() -> None:
                while True:
                    await asyncio.sleep(REDRAW_EVERY)
                    redraw()

            async def poll() -> None:
                while True:
                    await asyncio.sleep(POLL_EVERY)
                    try:
                        found = await asyncio.to_thread(client.pairs)
                    except KmsError:
                        continue  # the reconnecting status already says what is wrong
                    state.apply_pairs(found)

            helpers = [asyncio.create_task(tick()), asyncio.create_task(poll())]
            try:
                async with asyncio.timeout(duration):
                    async for event in events:
                        state.apply(event, time.monotonic())
                        redraw()
            except TimeoutError:
                if duration is None:
                    raise
            finally:
                for task in helpers:
                    task.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
    return state


def stream(
    pairs: Annotated[
        list[str], typer.Argument(metavar="PAIR...", help="Pairs to show, e.g. ETH/USD BTC/USD.")
    ],
    depth: Annotated[
        int, typer.Option("--depth", min=1, max=1000, help="Levels per side.")
    ] = 10,
    once: Annotated[
        bool, typer.Option("--once", help="Print one frame once every pair has a snapshot, "
                           "then exit (1 if a pair had none within --timeout).")
    ] = False,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0.0, help="Stop after this many seconds."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="With --once: seconds to wait.")
    ] = ONCE_TIMEOUT,
    server: ServerOption = None,
) -> None:
    """Live order books of PAIR... from the daemon, updated on every snapshot (Ctrl-C quits)."""
    import asyncio

    with errors_handled(), open_client(server) as client:
        try:
            state = asyncio.run(run_stream(
                client, pairs, depth=depth, once=once, duration=duration,
                first_frame_within=timeout))
        except KeyboardInterrupt:
            return  # the way to leave a live view: not an error
        if once and not state.ready():
            missing = [v.pair for v in state.views.values() if v.snapshot is None]
            err_console.print(
                f"[yellow]warning:[/] no snapshot within {timeout:g} s for {', '.join(missing)}"
            )
            raise typer.Exit(1)
