"""The real Kraken recording, served over loopback, verifies end to end through the client.

The server here is a few lines of ``websockets`` that answers the client's subscriptions and
then plays the recorded frames: it stands in for ``kms sim --replay`` so this test does not
depend on the simulator's replay mode.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from krakenstream.core.replay import replay_lines
from krakenstream.core.session import BookSession
from krakenstream.feed import FeedClient, FeedOptions, PairState


class FileFeed:
    """Serve a recording: status, the instrument frame on the instrument subscribe, then on
    the book subscribe an ack per symbol and every recorded book frame (with ``garbage``
    lines mixed in), then heartbeats."""

    def __init__(self, lines: list[str], garbage: list[str] | None = None) -> None:
        self.lines = lines
        self.garbage = garbage or []
        self.server: Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/v2"

    async def handler(self, ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._serve(ws)

    async def _serve(self, ws: ServerConnection) -> None:
        await ws.send('{"channel":"status","type":"update","data":[{"api_version":"v2",'
                      '"connection_id":1,"system":"online","version":"2.0.0"}]}')
        instrument = [ln for ln in self.lines if '"instrument"' in ln[:40]]
        books = [ln for ln in self.lines if '"book"' in ln[:20]]
        async for raw in ws:
            msg = orjson.loads(raw)
            params = msg.get("params", {})
            if msg.get("method") != "subscribe":
                continue
            if params.get("channel") == "instrument":
                await ws.send(orjson.dumps({"method": "subscribe", "req_id": msg["req_id"],
                                            "result": {"channel": "instrument"},
                                            "success": True}).decode())
                for ln in instrument:
                    await ws.send(ln)
            elif params.get("channel") == "book":
                for sym in params["symbol"]:
                    await ws.send(orjson.dumps({
                        "method": "subscribe", "req_id": msg["req_id"], "success": True,
                        "result": {"channel": "book", "depth": params["depth"],
                                   "snapshot": True, "symbol": sym}}).decode())
                for i, ln in enumerate(books):
                    await ws.send(ln)
                    if i % 50 == 1 and self.garbage:
                        await ws.send(self.garbage[(i // 50) % len(self.garbage)])
                while True:
                    await ws.send('{"channel":"heartbeat"}')
                    await asyncio.sleep(0.2)


GARBAGE = [
    "not json at all",
    "[1, 2, 3]",
    '{"channel":"book","type":"update","data":[]}',
    '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":"x","checksum":1}]}',
    '{"method":"subscribe","req_id":99}',
    '{"channel":"mystery"}',
]


@pytest.fixture
def recording(shared_recording: Path) -> tuple[list[str], BookSession]:
    """The recording's lines, and the book the pure core makes of them (the reference)."""
    lines = [ln for ln in shared_recording.read_text().splitlines() if ln.strip()]
    expected = replay_lines(lines)
    assert expected.pairs["BTC/USD"].frames == 510  # 1 snapshot + 509 updates
    assert expected.mismatches == 0
    reference = BookSession()
    for ln in lines:
        reference.receive(ln)
    return lines, reference


async def wait_frames(client: FeedClient, n: int) -> None:
    async with asyncio.timeout(5):
        while client.status()["BTC/USD"].frames < n:  # noqa: ASYNC110 - polling a counter
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("garbage", [[], GARBAGE], ids=["clean", "with-bad-frames"])
async def test_recorded_kraken_feed_verifies_through_the_client(
    recording: tuple[list[str], BookSession], garbage: list[str]
) -> None:
    lines, reference = recording
    ref_book = reference.books["BTC/USD"]
    feed = FileFeed(lines, garbage)
    async with serve(feed.handler, "127.0.0.1", 0) as server:
        feed.server = server
        options = FeedOptions(url=feed.url, heartbeat_timeout=1.0, backoff_initial=0.01)
        async with FeedClient(options, ["BTC/USD"]) as client:
            await wait_frames(client, 510)
            st = client.status()["BTC/USD"]
            assert st.state is PairState.LIVE
            assert (st.frames, st.mismatches, st.resyncs, st.crossed) == (510, 0, 0, 0)
            book = client.book("BTC/USD")
            assert book is not None
            assert book.bids() == ref_book.bids() and book.asks() == ref_book.asks()
            assert book.checksum == ref_book.checksum
            assert book.precision == ref_book.precision
            conn = client.connection_status()
            assert conn.bad_frames == (11 if garbage else 0)  # 510 frames: i % 50 == 1
            assert conn.reconnects == 0 and conn.connected
