"""The simulator over loopback, seen by a plain ``websockets`` client and the real core."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from krakenstream.core.book import Verdict
from krakenstream.core.session import BookSession
from krakenstream.errors import InputError, NotFound
from krakenstream.sim import connection as sim_connection
from krakenstream.sim.market import DEFAULT_PAIRS, BookStream, Market
from krakenstream.sim.server import SimServer

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
Frame = dict[str, Any]


def open_ws(url: str) -> connect:
    # unbounded client-side buffering: a test that stops reading must not stall the closing
    # handshake behind unread frames
    return connect(url, max_queue=None, close_timeout=2)


class Peer:
    """A test client: every frame it receives also goes through a real BookSession."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.session = BookSession()
        self.verdicts: list[tuple[str, Verdict]] = []
        self.req_id = 0

    async def send(self, method: str, params: Frame | None = None, **extra: Any) -> int:
        self.req_id += 1
        body: Frame = {"method": method, "req_id": self.req_id, **extra}
        if params is not None:
            body["params"] = params
        await self.ws.send(orjson.dumps(body).decode())
        return self.req_id

    async def recv(self, within: float = 2.0) -> Frame:
        text = await asyncio.wait_for(self.ws.recv(), within)
        _, results = self.session.receive(text)
        self.verdicts.extend((r.symbol, r.verdict) for r in results)
        frame: Frame = orjson.loads(text)
        return frame

    async def until(self, pred: Callable[[Frame], bool], within: float = 3.0) -> Frame:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            frame = await self.recv(max(0.01, deadline - loop.time()))
            if pred(frame):
                return frame

    async def subscribe_book(self, symbols: list[str], depth: int) -> list[Frame]:
        """Subscribe and return the acks, one per symbol."""
        rid = await self.send("subscribe", {"channel": "book", "symbol": symbols, "depth": depth})
        return [await self.until(lambda f: f.get("req_id") == rid) for _ in symbols]

    def count(self, symbol: str, verdict: Verdict) -> int:
        return sum(1 for s, v in self.verdicts if s == symbol and v is verdict)


def is_book(frame: Frame, kind: str | None = None) -> bool:
    return frame.get("channel") == "book" and (kind is None or frame.get("type") == kind)


def is_heartbeat(frame: Frame) -> bool:
    return frame.get("channel") == "heartbeat"


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(seed=7, rate=40.0, heartbeat_interval=0.25) as server:
        yield server


@pytest.fixture
async def peer(sim: SimServer) -> AsyncIterator[Peer]:
    async with open_ws(sim.url) as ws:
        p = Peer(ws)
        status = await p.recv()
        assert status["channel"] == "status"
        yield p


async def test_status_frame_on_connect(sim: SimServer) -> None:
    assert re.match(r"^ws://127\.0\.0\.1:\d+/v2$", sim.url)
    async with open_ws(sim.url) as ws:
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), 2))
    assert frame["channel"] == "status" and frame["type"] == "update"
    data = frame["data"][0]
    assert data["system"] == "online"
    assert data["api_version"] == "v2"
    assert data["connection_id"] > 2**63 - 1  # beyond int64, as Kraken's can be
    assert data["version"]
    assert sim.stats.connections_total == 1


async def test_other_paths_are_refused(sim: SimServer) -> None:
    for path in ("/", "/v1", "/v2/x"):
        with pytest.raises(InvalidStatus) as info:
            async with open_ws(sim.url.replace("/v2", path)):
                pass
        assert info.value.response.status_code == 404


async def test_instrument_snapshot_lists_every_pair_with_precisions(peer: Peer) -> None:
    rid = await peer.send("subscribe", {"channel": "instrument"})
    ack = await peer.recv()
    assert ack["method"] == "subscribe" and ack["success"] is True and ack["req_id"] == rid
    assert ack["result"]["channel"] == "instrument"
    snap = await peer.recv()
    assert snap["channel"] == "instrument" and snap["type"] == "snapshot"
    pairs = {p["symbol"]: p for p in snap["data"]["pairs"]}
    assert (pairs["PEPE/USD"]["price_precision"], pairs["PEPE/USD"]["qty_precision"]) == (9, 2)
    assert (pairs["BTC/USD"]["price_precision"], pairs["BTC/USD"]["qty_precision"]) == (1, 8)
    assert pairs["DOGE/USD"]["price_increment"] == 1e-07
    assert all(p["status"] == "online" and p["base"] and p["quote"] for p in pairs.values())
    assert isinstance(snap["data"]["assets"], list)


@pytest.mark.slow
async def test_book_subscribe_acks_one_per_symbol_then_verified_frames(
    sim: SimServer, peer: Peer
) -> None:
    acks = await peer.subscribe_book(["ETH/USD", "PEPE/USD"], 25)
    for ack, symbol in zip(acks, ["ETH/USD", "PEPE/USD"], strict=True):
        assert ack["method"] == "subscribe" and ack["success"] is True
        assert ack["result"] == {"channel": "book", "depth": 25, "snapshot": True,
                                 "symbol": symbol}
        assert ISO.match(ack["time_in"]) and ISO.match(ack["time_out"])
    for _ in range(60):
        frame = await peer.until(is_book)
        if frame["type"] == "update":
            assert ISO.match(frame["data"][0]["timestamp"])
    for symbol in ("ETH/USD", "PEPE/USD"):
        assert peer.count(symbol, Verdict.VERIFIED) > 10
    assert {v for _, v in peer.verdicts} == {Verdict.VERIFIED}
    assert sim.subscriptions() == {"ETH/USD": 1, "PEPE/USD": 1}


@pytest.mark.slow
async def test_kraken_error_frames(peer: Peer) -> None:
    (err,) = await peer.subscribe_book(["XBT/EUR"], 10)
    assert err["success"] is False and "result" not in err
    assert err["error"] == "Currency pair not supported XBT/EUR"
    assert err["symbol"] == "XBT/EUR" and err["method"] == "subscribe"

    (err,) = await peer.subscribe_book(["ETH/USD"], 15)
    assert (err["success"], err["error"]) == (False, "Subscription depth not supported")

    rid = await peer.send("subscribe", {"channel": "book", "symbol": "ETH/USD", "depth": 10})
    err = await peer.until(lambda f: f.get("req_id") == rid)
    assert (err["success"], err["error"]) == (False, "Symbol field must be an array")

    (ok,) = await peer.subscribe_book(["ETH/USD"], 10)
    assert ok["success"] is True
    (err,) = await peer.subscribe_book(["ETH/USD"], 10)
    assert (err["success"], err["error"], err["symbol"]) == (False, "Already subscribed", "ETH/USD")

    rid = await peer.send("unsubscribe", {"channel": "book", "symbol": ["SOL/USD"], "depth": 10})
    err = await peer.until(lambda f: f.get("req_id") == rid)
    assert (err["success"], err["error"], err["symbol"]) == (
        False, "Subscription Not Found", "SOL/USD")

    rid = await peer.send("unsubscribe", {"channel": "book", "symbol": ["ETH/USD"], "depth": 10})
    ack = await peer.until(lambda f: f.get("req_id") == rid)
    assert ack["success"] is True and ack["method"] == "unsubscribe"
    assert ack["result"] == {"channel": "book", "depth": 10, "symbol": "ETH/USD"}
    # nothing for ETH/USD after the ack, and no heartbeats: nothing is subscribed
    with pytest.raises(TimeoutError):
        await peer.recv(0.6)

    rid = await peer.send("frobnicate")
    err = await peer.until(lambda f: f.get("req_id") == rid)
    assert err["success"] is False and "frobnicate" in err["error"]
    await peer.ws.send("{not json")
    err = await peer.until(lambda f: f.get("success") is False)
    assert err["error"] == "Malformed request"


async def test_ping_pong(peer: Peer) -> None:
    rid = await peer.send("ping")
    pong = await peer.recv()
    assert pong["method"] == "pong" and pong["req_id"] == rid
    assert ISO.match(pong["time_in"]) and ISO.match(pong["time_out"])


@pytest.mark.slow
async def test_heartbeats_only_while_subscribed_and_idle(sim: SimServer, peer: Peer) -> None:
    with pytest.raises(TimeoutError):
        await peer.recv(0.6)  # not subscribed: silence
    await peer.send("subscribe", {"channel": "instrument"})
    await peer.recv()
    await peer.recv()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert is_heartbeat(await peer.recv(1.0))
    assert is_heartbeat(await peer.recv(1.0))
    assert 0.3 < loop.time() - t0 < 1.5
    assert sim.stats.heartbeats >= 2


@pytest.mark.slow
async def test_client_books_equal_the_sim_books_after_pause(sim: SimServer, peer: Peer) -> None:
    wanted = {"BTC/USD": 10, "PEPE/USD": 1000, "DOGE/USD": 100, "ETH/BTC": 500, "ADA/USD": 25}
    for symbol, depth in wanted.items():
        (ack,) = await peer.subscribe_book([symbol], depth)
        assert ack["success"] is True
    await peer.send("subscribe", {"channel": "instrument"})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while loop.time() - t0 < 1.0:
        await peer.recv()
    await sim.pause()
    await peer.until(is_heartbeat)  # everything sent before the pause has arrived
    for symbol, depth in wanted.items():
        book = peer.session.books[symbol]
        assert book.valid
        assert (book.bids(), book.asks()) == sim.book_view(symbol, depth), symbol
        assert book.precision == sim.precision(symbol)
        assert peer.count(symbol, Verdict.VERIFIED) > 10
    assert {v for _, v in peer.verdicts} == {Verdict.VERIFIED}
    # paused: heartbeats only
    assert is_heartbeat(await peer.recv())
    await sim.resume()
    await peer.until(is_book)


async def test_fault_drop_closes_the_connection(sim: SimServer, peer: Peer) -> None:
    await peer.subscribe_book(["ETH/USD"], 10)
    await peer.until(is_book)
    assert await sim.fault("drop") == 1
    with pytest.raises(ConnectionClosed):
        await peer.until(lambda f: False, within=2.0)
    assert sim.stats.faults["drop"] == 1
    async with open_ws(sim.url) as ws:  # the server itself is fine
        assert orjson.loads(await ws.recv())["channel"] == "status"


async def test_fault_drop_with_a_code_closes_cleanly_and_only_that_connection(
    sim: SimServer, peer: Peer
) -> None:
    await peer.subscribe_book(["ETH/USD"], 10)
    async with open_ws(sim.url) as ws:
        other = Peer(ws)
        status = await other.recv()
        other_id = status["data"][0]["connection_id"]
        assert other_id in sim.connection_ids() and len(sim.connection_ids()) == 2
        await other.subscribe_book(["ETH/USD"], 10)
        assert await sim.fault("drop", code=1011, connection=other_id) == 1
        with pytest.raises(ConnectionClosed) as info:
            await other.until(lambda f: False)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    await peer.until(is_book)  # the first connection is untouched
    assert len(sim.connection_ids()) == 1
    with pytest.raises(NotFound):
        await sim.fault("drop", connection=12345)


@pytest.mark.slow
async def test_fault_corrupt_breaks_one_frame_of_one_symbol(sim: SimServer, peer: Peer) -> None:
    await peer.subscribe_book(["ETH/USD", "BTC/USD"], 10)
    for _ in range(10):
        await peer.until(is_book)
    assert await sim.fault("corrupt", symbol="ETH/USD") == 1
    await peer.until(lambda f: peer.count("ETH/USD", Verdict.MISMATCH) == 1)
    # resubscribe as a client would: everything verifies again, and stays so
    rid = await peer.send("unsubscribe", {"channel": "book", "symbol": ["ETH/USD"], "depth": 10})
    await peer.until(lambda f: f.get("req_id") == rid)
    peer.session.drop("ETH/USD")
    await peer.subscribe_book(["ETH/USD"], 10)
    before = peer.count("ETH/USD", Verdict.VERIFIED)
    for _ in range(40):
        await peer.until(is_book)
    assert peer.count("ETH/USD", Verdict.VERIFIED) > before + 10
    assert peer.count("ETH/USD", Verdict.MISMATCH) == 1
    assert peer.count("BTC/USD", Verdict.MISMATCH) == 0
    assert peer.count("BTC/USD", Verdict.IGNORED) == 0
    assert sim.stats.faults["corrupt"] == 1


@pytest.mark.slow
async def test_fault_stall_silences_everything_then_delivers(sim: SimServer, peer: Peer) -> None:
    await peer.subscribe_book(["SOL/USD"], 10)
    await peer.until(is_book)
    loop = asyncio.get_running_loop()
    assert await sim.fault("stall", seconds=0.8) == 1
    t0 = loop.time()
    # at most one frame already in flight, then nothing (no heartbeats either) until the end
    with pytest.raises(TimeoutError):
        while True:
            await peer.recv(0.6)
    frame = await peer.recv(1.0)
    assert loop.time() - t0 >= 0.75
    assert is_book(frame)
    for _ in range(20):
        await peer.until(is_book)
    assert {v for _, v in peer.verdicts} == {Verdict.VERIFIED}


@pytest.mark.slow
async def test_fault_maintenance_then_online(sim: SimServer, peer: Peer) -> None:
    await peer.subscribe_book(["XRP/USD"], 10)
    await peer.until(is_book)
    await sim.fault("maintenance", seconds=0.7)
    status = await peer.until(lambda f: f.get("channel") == "status")
    assert status["data"][0]["system"] == "maintenance"
    assert sim.in_maintenance
    # no book frames until online again
    frame = await peer.until(lambda f: f.get("channel") in ("status", "book"), within=2.0)
    assert frame["channel"] == "status" and frame["data"][0]["system"] == "online"
    await peer.until(is_book)
    assert {v for _, v in peer.verdicts} == {Verdict.VERIFIED}


@pytest.mark.slow
async def test_maintenance_may_close_and_new_connections_see_it(sim: SimServer, peer: Peer) -> None:
    await peer.subscribe_book(["XRP/USD"], 10)
    await sim.fault("maintenance", seconds=1.0, close=True)
    await peer.until(lambda f: f.get("channel") == "status")
    with pytest.raises(ConnectionClosed) as info:
        await peer.until(lambda f: False)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    async with open_ws(sim.url) as ws:
        status = orjson.loads(await ws.recv())
        assert status["data"][0]["system"] == "maintenance"
        online = orjson.loads(await asyncio.wait_for(ws.recv(), 2))
        assert online["data"][0]["system"] == "online"


@pytest.mark.slow
async def test_control_methods_over_the_socket(sim: SimServer, peer: Peer) -> None:
    await peer.subscribe_book(["LTC/USD"], 25)
    await peer.until(is_book)
    async with open_ws(sim.url) as ws:
        control = Peer(ws)
        await control.recv()
        rid = await control.send("x-sim-pause", {"paused": True})
        ack = await control.until(lambda f: f.get("req_id") == rid)
        assert ack["success"] is True and sim.paused
        await peer.until(is_heartbeat)
        rid = await control.send("x-sim-book", {"symbol": "LTC/USD", "depth": 25})
        answer = await control.until(lambda f: f.get("req_id") == rid)
        result = answer["result"]
        bids, asks = sim.book_view("LTC/USD", 25)
        assert [tuple(lv) for lv in result["bids"]] == bids
        assert [tuple(lv) for lv in result["asks"]] == asks
        book = peer.session.books["LTC/USD"]
        assert (book.bids(), book.asks()) == (bids, asks)
        assert (result["price_precision"], result["qty_precision"]) == (2, 8)

        rid = await control.send("x-sim-pause", {"paused": False})
        await control.until(lambda f: f.get("req_id") == rid)
        assert not sim.paused
        await peer.until(is_book)

        rid = await control.send("x-sim-fault", {"kind": "nonsense"})
        err = await control.until(lambda f: f.get("req_id") == rid)
        assert err["success"] is False

        rid = await control.send("x-sim-fault", {"kind": "drop"})
        ack = await control.until(lambda f: f.get("req_id") == rid)
        assert ack["success"] is True
        with pytest.raises(ConnectionClosed):
            await peer.until(lambda f: False)
        # the controlling connection itself was spared
        assert (await control.send("ping")) and (await control.recv())["method"] == "pong"


async def test_random_faults_follow_the_seed() -> None:
    async with SimServer(seed=3, rate=40.0, fault_rate=8.0, fault_kinds=["corrupt"]) as sim:
        async with open_ws(sim.url) as ws:
            peer = Peer(ws)
            await peer.subscribe_book(["ETH/USD"], 10)
            await peer.until(lambda f: peer.count("ETH/USD", Verdict.MISMATCH) > 0, within=5)
    assert sim.stats.faults["corrupt"] >= 1
    assert sim.stats.faults["drop"] == 0


async def test_a_slow_consumer_is_cut_off(
    sim: SimServer, peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sim_connection, "OUT_QUEUE_LIMIT", 20)
    await peer.subscribe_book(["ETH/USD", "BTC/USD"], 10)
    await sim.fault("stall", seconds=5.0)  # frames pile up in the bounded queue
    with pytest.raises(ConnectionClosed):
        await peer.until(lambda f: False, within=6.0)
    assert sim.stats.slow_consumers == 1


async def test_python_api_errors(sim: SimServer) -> None:
    with pytest.raises(NotFound):
        sim.book_view("XBT/EUR", 10)
    with pytest.raises(NotFound):
        sim.precision("XBT/EUR")
    with pytest.raises(InputError):
        await sim.fault("explode")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        SimServer(rate=0)
    assert sim.precision("PEPE/USD").price == 9


async def test_extra_and_synthetic_pairs() -> None:
    async with SimServer(pairs=["ATOM/USD", "FOO/EUR"], synthetic=3, seed=1, rate=40) as sim:
        assert {"ATOM/USD", "FOO/EUR", "SYN0003/USD", "BTC/USD"} <= set(sim.symbols)
        async with open_ws(sim.url) as ws:
            peer = Peer(ws)
            await peer.send("subscribe", {"channel": "instrument"})
            await peer.until(lambda f: f.get("channel") == "instrument")
            acks = await peer.subscribe_book(["FOO/EUR", "SYN0003/USD"], 10)
            assert all(a["success"] for a in acks)
            for _ in range(20):
                await peer.until(is_book)
        assert {v for _, v in peer.verdicts} == {Verdict.VERIFIED}


# -- replay -----------------------------------------------------------------------------------


def _book_lines(path: Path) -> int:
    return sum(1 for line in path.read_bytes().splitlines()
               if line.startswith(b'{"channel":"book"'))


async def test_replay_serves_the_recording_and_every_frame_verifies(
    shared_recording: Path,
) -> None:
    book_lines = _book_lines(shared_recording)
    async with SimServer(replay=shared_recording, speed=0, heartbeat_interval=0.25) as sim:
        assert sim.symbols == ["BTC/USD"]
        assert sim.precision("BTC/USD").price == 1
        async with open_ws(sim.url) as ws:
            peer = Peer(ws)
            await peer.recv()
            await peer.send("subscribe", {"channel": "instrument"})
            await peer.until(lambda f: f.get("channel") == "instrument")
            (err,) = await peer.subscribe_book(["BTC/USD"], 25)
            assert err["error"] == "Subscription depth not supported"
            (err,) = await peer.subscribe_book(["ETH/USD"], 10)
            assert err["error"] == "Currency pair not supported ETH/USD"
            (ack,) = await peer.subscribe_book(["BTC/USD"], 10)
            assert ack["success"] is True
            await peer.until(is_heartbeat, within=10)
    assert len(peer.verdicts) == book_lines == 510
    assert {v for _, v in peer.verdicts} == {Verdict.VERIFIED}
    assert peer.session.books["BTC/USD"].verified_frames == 510


async def test_replay_is_paced_by_the_recorded_timestamps(shared_recording: Path) -> None:
    async with SimServer(replay=shared_recording, speed=1000.0) as sim:
        async with open_ws(sim.url) as ws:
            peer = Peer(ws)
            await peer.recv()
            await peer.send("subscribe", {"channel": "instrument"})
            await peer.until(lambda f: f.get("channel") == "instrument")
            await peer.subscribe_book(["BTC/USD"], 10)
            await sim.fault("corrupt", symbol="BTC/USD")
            await peer.until(lambda f: len(peer.verdicts) == 510, within=10)
    assert peer.count("BTC/USD", Verdict.MISMATCH) == 1


async def test_replay_of_a_bad_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"channel":"heartbeat"}\nnot json\n')
    with pytest.raises(InputError, match="no book frames"):
        await SimServer(replay=bad).start()
    with pytest.raises(InputError, match="cannot read"):
        await SimServer(replay=tmp_path / "absent.jsonl").start()


def _write_recording(path: Path, symbols: list[str], frames_each: int) -> None:
    """A recording made by the market itself: an instrument frame, then interleaved pairs."""
    market = Market(DEFAULT_PAIRS, seed=5)
    streams = {s: BookStream(market.book(s), 10, random.Random(s)) for s in symbols}
    lines = [orjson.dumps({"channel": "instrument", "type": "snapshot",
                           "data": market.instrument_data()})]
    lines += [orjson.dumps(st.snapshot(None)) for st in streams.values()]
    n = 0
    while n < frames_each * len(symbols):
        for symbol, stream in streams.items():
            ts = f"2026-01-01T00:00:{n // 1000:02d}.{n % 1000:03d}000Z"
            frame = stream.update(market.step(symbol), ts)
            if frame is not None:
                lines.append(orjson.dumps(frame))
                n += 1
    path.write_bytes(b"\n".join(lines) + b"\n")


@pytest.mark.slow
async def test_replay_of_a_long_file_at_full_speed_keeps_pace_with_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sim_connection, "REPLAY_BACKLOG", 40)
    monkeypatch.setattr(sim_connection, "OUT_QUEUE_LIMIT", 100)
    path = tmp_path / "two-pairs.jsonl"
    await asyncio.to_thread(_write_recording, path, ["ETH/USD", "PEPE/USD"], 600)
    async with SimServer(replay=path, speed=0, heartbeat_interval=0.25) as sim:
        assert sim.symbols == ["ETH/USD", "PEPE/USD"]
        assert sim.precision("PEPE/USD").qty == 2
        async with open_ws(sim.url) as ws:
            peer = Peer(ws)
            await peer.send("subscribe", {"channel": "instrument"})
            await peer.until(lambda f: f.get("channel") == "instrument")
            await peer.subscribe_book(["ETH/USD", "PEPE/USD"], 10)
            await peer.until(is_heartbeat, within=10)
    assert sim.stats.slow_consumers == 0
    assert len(peer.verdicts) == _book_lines(path) > 1200
    for symbol in ("ETH/USD", "PEPE/USD"):
        assert peer.count(symbol, Verdict.VERIFIED) > 500
    assert {v for _, v in peer.verdicts} == {Verdict.VERIFIED}
