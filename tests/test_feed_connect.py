"""``feed/connect.py``: one WebSocket opened on loopback, given up for ``stop`` at any moment
of the handshake, and a closed one or a failed attempt said in a few words."""

from __future__ import annotations

import asyncio
import socket

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.frames import Close

from krakenstream.feed.connect import (
    MAX_FRAME_BYTES,
    describe_close,
    describe_connect_error,
    open_socket,
)


async def echo(ws: ServerConnection) -> None:
    async for msg in ws:
        await ws.send(msg)


@pytest.mark.slow
async def test_a_socket_opens_and_takes_large_frames() -> None:
    async with serve(echo, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        ws = await open_socket(f"ws://127.0.0.1:{port}/v2", open_timeout=5,
                               stop=asyncio.Event())
        assert ws is not None
        try:
            big = "x" * (MAX_FRAME_BYTES - 1)  # the instrument list of every pair fits
            await ws.send(big)
            assert await asyncio.wait_for(ws.recv(), 30) == big
        finally:
            await ws.close()


async def test_stop_gives_up_a_handshake_that_hangs() -> None:
    # a listener that accepts TCP and never answers the HTTP upgrade
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        stop = asyncio.Event()
        attempt = asyncio.create_task(
            open_socket(f"ws://127.0.0.1:{port}/v2", open_timeout=3600, stop=stop))
        await asyncio.sleep(0)
        assert not attempt.done()
        stop.set()
        assert await asyncio.wait_for(attempt, 10) is None


async def test_a_stop_already_set_opens_nothing() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        stop = asyncio.Event()
        stop.set()
        assert await open_socket(f"ws://127.0.0.1:{port}/v2", open_timeout=5,
                                 stop=stop) is None


async def test_a_refused_connection_raises_what_it_raised() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OSError) as caught:
        await open_socket(f"ws://127.0.0.1:{port}/v2", open_timeout=5, stop=asyncio.Event())
    assert describe_connect_error(caught.value) == caught.value.strerror


def test_closes_and_failures_in_a_few_words() -> None:
    assert describe_close(ConnectionClosedError(None, None)) == (
        "connection closed abnormally (no close frame)")
    assert describe_close(ConnectionClosed(Close(1011, "internal error"), None)) == (
        "connection closed: 1011 internal error")
    assert describe_close(ConnectionClosed(None, Close(1000, ""))) == "connection closed: 1000"
    assert describe_connect_error(TimeoutError()) == "timed out opening the connection"
    assert describe_connect_error(ValueError("bad status 502")) == "ValueError: bad status 502"
    assert describe_connect_error(ValueError()) == "ValueError"
