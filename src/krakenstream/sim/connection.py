"""One client connection of the simulator: its state and its bounded outbound queue.

Everything the server sends a client goes through :meth:`Connection.push` into one queue,
drained by one writer task (:meth:`Connection.write`), so frames leave in the order they
were decided. The queue is bounded: a client that cannot keep up (``OUT_QUEUE_LIMIT``
frames waiting) is disconnected, as an exchange would; a book with holes is never served.
A replay waits for room instead (:meth:`Connection.wait_for_room`), so a long file at full
speed follows the reader rather than overflowing the queue.

The writer takes every frame queued when it wakes (up to :data:`WRITE_BATCH`) and sends them
in one write to the socket (:func:`send_texts`): still one WebSocket message per frame, as
Kraken sends them, but one system call and one task switch for many frames, which is what
lets one process serve thousands of pairs.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from dataclasses import dataclass

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .market import BookStream
from .protocol import Session
from .stats import SimStats

log = logging.getLogger(__name__)

#: frames queued for one connection before it counts as a slow consumer and is cut off
OUT_QUEUE_LIMIT = 50_000
#: a replay waits while this many frames are queued for its connection
REPLAY_BACKLOG = 1000
#: the most frames the writer sends in one write to the socket
WRITE_BATCH = 256


@dataclass(frozen=True, slots=True)
class Close:
    """A queue item: close the connection once everything before it was sent."""

    code: int
    reason: str


class Connection:
    """One client: what it subscribed to (its :class:`~.protocol.Session`), its book streams
    and replays, the faults aimed at it, and its outbound queue."""

    __slots__ = (
        "id", "ws", "rng", "session", "stats", "out", "wake", "room", "busy", "writer",
        "streams", "replays", "corrupt", "stalled_until", "last_sent", "closed",
    )

    def __init__(
        self, cid: int, ws: ServerConnection, rng: random.Random, session: Session,
        stats: SimStats, now: float,
    ) -> None:
        self.id = cid
        self.ws = ws
        self.rng = rng
        self.session = session
        self.stats = stats
        self.out: deque[bytes | Close] = deque()
        self.wake = asyncio.Event()
        #: set while the queue has room for a replay to add frames
        self.room = asyncio.Event()
        #: the writer holds a frame it has not finished sending
        self.busy = False
        self.writer: asyncio.Task[None] | None = None
        self.streams: dict[str, BookStream] = {}
        self.replays: dict[str, asyncio.Task[None]] = {}
        #: symbols whose next update gets a wrong checksum
        self.corrupt: set[str] = set()
        self.stalled_until = 0.0
        self.last_sent = now
        #: the server has forgotten this connection (it is going away)
        self.closed = False

    @property
    def depths(self) -> dict[str, int]:
        """Subscribed book symbols and their depths."""
        return self.session.depths

    @property
    def subscribed(self) -> bool:
        return self.session.subscribed

    def pending(self, now: float) -> bool:
        """Frames are waiting to be sent, and no stall holds them back."""
        return bool(self.out or self.busy) and self.stalled_until <= now

    def push(self, item: bytes | Close) -> None:
        """Queue a frame; a full queue cuts the connection off (a slow consumer)."""
        out = self.out
        if len(out) >= OUT_QUEUE_LIMIT:
            if not self.closed:
                self.stats.slow_consumers += 1
                log.warning("sim slow consumer connection=%d queued=%d: disconnecting",
                            self.id, len(out))
                out.clear()
                self.ws.transport.abort()
            return
        out.append(item)
        self.wake.set()

    async def wait_for_room(self) -> None:
        """Return once fewer than ``REPLAY_BACKLOG`` frames are queued."""
        if len(self.out) >= REPLAY_BACKLOG:
            self.room.clear()
            await self.room.wait()

    # -- faults --------------------------------------------------------------------------

    def abort(self) -> None:
        """Cut the TCP connection: no close frame."""
        self.ws.transport.abort()

    def close_now(self, code: int, reason: str) -> None:
        """A clean close with ``code``, at once: what was queued is lost, as on a real cut."""
        self.out.clear()
        self.stalled_until = 0.0
        self.push(Close(code, reason))

    def close_after_queue(self, code: int, reason: str) -> None:
        """A clean close once everything queued so far was sent."""
        self.push(Close(code, reason))

    def stall(self, until: float) -> None:
        """Send nothing (frames are held, not lost) until loop time ``until``."""
        self.stalled_until = until

    # -- the writer task -----------------------------------------------------------------

    async def write(self) -> None:
        """Drain the queue, many frames per write; a stall holds the frames back."""
        loop = asyncio.get_running_loop()
        ws, out, stats = self.ws, self.out, self.stats
        try:
            while True:
                if not out:
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                delay = self.stalled_until - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
                batch: list[bytes] = []
                while out and len(batch) < WRITE_BATCH:
                    item = out[0]
                    if isinstance(item, Close):
                        break
                    batch.append(item)
                    out.popleft()
                if len(out) < REPLAY_BACKLOG // 2:
                    self.room.set()
                self.busy = True
                if not batch:
                    close = out.popleft()
                    assert isinstance(close, Close)
                    await ws.close(close.code, close.reason)
                    return
                await send_texts(ws, batch)
                self.busy = False
                self.last_sent = loop.time()
                stats.frames_sent += len(batch)
        except ConnectionClosed:
            pass
        finally:
            self.busy = False


async def send_texts(ws: ServerConnection, frames: list[bytes]) -> None:
    """Send each of ``frames`` (UTF-8 JSON) as a text message of its own, in one write.

    What ``ws.send(frame, text=True)`` does for one frame (the same check that the
    connection is open, the same flow control), written once for all of them. Without an
    extension (the simulator negotiates none: no compression), a server's text frame is a
    two- to ten-byte header and the payload as is (RFC 6455 5.2: FIN, opcode 1, no mask),
    so the frames are written here; with one, websockets frames them."""
    async with ws.send_context():
        protocol = ws.protocol
        if protocol.extensions:
            for frame in frames:
                protocol.send_text(frame)
            data = protocol.data_to_send()
        else:
            data = protocol.data_to_send()  # whatever websockets has queued goes first
            for frame in frames:
                data.append(text_header(len(frame)))
                data.append(frame)
        ws.transport.write(b"".join(data))


def text_header(size: int) -> bytes:
    """The header of an unmasked, unfragmented text frame of ``size`` bytes."""
    if size < 126:
        return bytes((0x81, size))
    if size < 65536:
        return b"\x81\x7e" + size.to_bytes(2, "big")
    return b"\x81\x7f" + size.to_bytes(8, "big")
