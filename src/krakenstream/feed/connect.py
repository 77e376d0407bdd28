"""Opening one WebSocket to the exchange, and saying in a few words why one closed.

Kept apart from the client so the client reads as its three tasks and its reconnect loop.
An attempt gives way to ``stop`` at any moment of the handshake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.uri import parse_uri

#: the largest frame accepted (the instrument list of every Kraken pair is about 1 MB)
MAX_FRAME_BYTES = 16 * 2**20
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")

#: asked before each connection attempt: how many seconds it must wait for its turn (a
#: pool's shared connection budget); the attempt is counted for then
Gate = Callable[[], float]


async def open_socket(
    url: str,
    *,
    open_timeout: float,
    stop: asyncio.Event,
) -> ClientConnection | None:
    """A new connection to ``url``, or None if ``stop`` was set first.

    Raises what the attempt raised (OSError, TimeoutError, a handshake's
    WebSocketException).
    """
    # a loopback URL (the simulator) never goes through a proxy from the environment
    proxy: Literal[True] | None = None if parse_uri(url).host in _LOOPBACK else True

    async def attempt() -> ClientConnection:
        return await connect(
            url,
            open_timeout=open_timeout,
            max_size=MAX_FRAME_BYTES,
            proxy=proxy,
            # the heartbeat timeout detects a dead line; protocol pings are a backstop
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
        )

    opening = asyncio.create_task(attempt(), name="kms-feed-connect")
    stopping = asyncio.create_task(stop.wait(), name="kms-feed-stop")
    try:
        await asyncio.wait({opening, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not opening.done():
            opening.cancel()
            await asyncio.gather(opening, return_exceptions=True)
    if opening.cancelled():
        return None
    ws = opening.result()
    if stop.is_set():
        await ws.close()
        return None
    return ws


def describe_close(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "connection closed abnormally (no close frame)"
    reason = f" {frame.reason}" if frame.reason else ""
    return f"connection closed: {frame.code}{reason}"


def describe_connect_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out opening the connection"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
