"""One simulator connection: its queue's order, its bound, stalls and closes (a fake socket)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from krakenstream.sim import connection as sim_connection
from krakenstream.sim.connection import Close, Connection
from krakenstream.sim.protocol import Catalog, Session
from krakenstream.sim.stats import SimStats


class FakeTransport:
    def __init__(self) -> None:
        self.aborted = False
        self.writes: list[bytes] = []

    def abort(self) -> None:
        self.aborted = True

    def write(self, data: bytes) -> None:
        self.writes.append(data)


class FakeProtocol:
    """The sans-I/O side of websockets, as far as the writer uses it: messages in order.

    It says it has an extension, so the writer hands it every message (rather than framing
    them itself, as it does for a real connection without one: see the real-socket test)."""

    extensions = ["recorded"]

    def __init__(self, sent: list[bytes]) -> None:
        self.sent = sent
        self.pending: list[bytes] = []

    def send_text(self, data: bytes) -> None:
        self.sent.append(data)
        self.pending.append(data)

    def data_to_send(self) -> list[bytes]:
        out, self.pending = self.pending, []
        return out


class FakeWs:
    """Records what the writer sends (each message, and each write to the socket);
    ``gate`` holds each send until set."""

    def __init__(self) -> None:
        self.transport = FakeTransport()
        self.sent: list[bytes] = []
        self.protocol = FakeProtocol(self.sent)
        self.closed: tuple[int, str] | None = None
        self.gate = asyncio.Event()
        self.gate.set()

    @contextlib.asynccontextmanager
    async def send_context(self) -> AsyncIterator[None]:
        await self.gate.wait()
        yield

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def make(now: float = 0.0) -> tuple[Connection, FakeWs, SimStats]:
    ws, stats = FakeWs(), SimStats()
    conn = Connection(1, ws, random.Random(1), Session(Catalog(set())), stats, now)  # type: ignore[arg-type]
    return conn, ws, stats


async def until(pred: Any, within: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not pred():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


async def test_frames_leave_in_order_then_a_close() -> None:
    conn, ws, stats = make()
    writer = asyncio.create_task(conn.write())
    for i in range(5):
        conn.push(b"%d" % i)
    conn.close_after_queue(1001, "bye")
    conn.push(b"never")
    await asyncio.wait_for(writer, 2)
    assert ws.sent == [b"0", b"1", b"2", b"3", b"4"]
    assert ws.closed == (1001, "bye")
    assert stats.frames_sent == 5


async def test_close_now_drops_what_was_queued() -> None:
    conn, ws, _ = make()
    conn.push(b"lost")
    conn.stall(1e9)
    conn.close_now(1011, "cut")
    await asyncio.wait_for(conn.write(), 2)
    assert ws.sent == [] and ws.closed == (1011, "cut")


async def test_a_full_queue_cuts_the_client_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim_connection, "OUT_QUEUE_LIMIT", 3)
    conn, ws, stats = make()
    for i in range(4):
        conn.push(b"%d" % i)
    assert ws.transport.aborted and stats.slow_consumers == 1 and not conn.out
    # a connection the server already forgot is not counted again
    conn2, ws2, stats2 = make()
    conn2.closed = True
    for i in range(4):
        conn2.push(b"%d" % i)
    assert stats2.slow_consumers == 0


async def test_a_stall_holds_frames_back() -> None:
    conn, ws, _ = make()
    loop = asyncio.get_running_loop()
    conn.stall(loop.time() + 0.2)
    conn.push(b"held")
    assert not conn.pending(loop.time())  # stalled: nothing counts as pending
    writer = asyncio.create_task(conn.write())
    await until(lambda: ws.sent)
    assert loop.time() >= conn.stalled_until
    assert not conn.pending(loop.time())
    writer.cancel()


async def test_pending_while_a_send_is_in_flight() -> None:
    conn, ws, _ = make()
    ws.gate.clear()
    writer = asyncio.create_task(conn.write())
    conn.push(b"slow")
    await until(lambda: conn.busy)
    assert not conn.out and conn.pending(0.0)
    ws.gate.set()
    await until(lambda: ws.sent)
    assert not conn.pending(0.0)
    writer.cancel()


async def test_wait_for_room(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim_connection, "REPLAY_BACKLOG", 4)
    conn, ws, _ = make()
    for i in range(4):
        conn.push(b"%d" % i)
    waiting = asyncio.create_task(conn.wait_for_room())
    await asyncio.sleep(0)
    assert not waiting.done()
    writer = asyncio.create_task(conn.write())
    await asyncio.wait_for(waiting, 2)
    assert len(conn.out) < 4
    await until(lambda: len(ws.sent) == 4)
    await asyncio.wait_for(conn.wait_for_room(), 0.1)  # room: returns at once
    writer.cancel()


def test_the_session_is_the_subscription_state() -> None:
    conn, _, _ = make()
    assert not conn.subscribed
    conn.session.depths["ETH/USD"] = 10
    assert conn.depths == {"ETH/USD": 10} and conn.subscribed
    assert isinstance(Close(1000, "x"), Close)


async def test_frames_queued_together_leave_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim_connection, "WRITE_BATCH", 4)
    conn, ws, stats = make()
    for i in range(10):
        conn.push(b"%d" % i)
    conn.close_after_queue(1000, "done")
    await asyncio.wait_for(conn.write(), 2)
    assert ws.sent == [b"%d" % i for i in range(10)] and stats.frames_sent == 10
    assert ws.transport.writes == [b"0123", b"4567", b"89"]  # at most WRITE_BATCH a write
    assert ws.closed == (1000, "done")


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_over_a_real_socket_each_frame_is_a_message_of_its_own(
    compression: str | None,
) -> None:
    """Batched writes still give a client one WebSocket text message per frame, framed by
    the writer itself (no extension, as the simulator serves) or by websockets."""
    received: list[str] = []
    frames = [b'{"n":%d,"pad":"%s"}' % (i, b"x" * (i * 7 % 300)) for i in range(1000)]
    # around the sizes where the header grows (125/126 and 65535/65536 bytes)
    frames += [b'"%s"' % (b"y" * (n - 2)) for n in (2, 125, 126, 127, 65535, 65536, 70000)]

    async def handler(ws: ServerConnection) -> None:
        assert bool(ws.protocol.extensions) == (compression is not None)
        conn = Connection(1, ws, random.Random(1), Session(Catalog(set())), SimStats(), 0.0)
        for frame in frames:
            conn.push(frame)
        conn.close_after_queue(1000, "done")
        await conn.write()

    async with serve(handler, "127.0.0.1", 0, compression=compression) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=compression,
                           max_size=None) as client:
            async for message in client:
                assert isinstance(message, str)
                received.append(message)
    assert received == [f.decode() for f in frames]
