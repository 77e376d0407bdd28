"""The feed client against the local simulator over loopback: the real code path, end to end.

Every test binds the simulator to 127.0.0.1 on a free port; nothing leaves the machine.
Timeouts are short (heartbeat 1 s, backoff from 10 ms) so the whole file runs in seconds.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from krakenstream.config import KrakenSettings, as_options
from krakenstream.errors import (
    BackendUnavailable,
    ConfigError,
    FeedError,
    InputError,
    InvalidPair,
)
from krakenstream.feed import FeedClient, FeedEvent, PairState
from krakenstream.feed.options import FeedOptions
from krakenstream.sim.server import SimServer

FAST: dict[str, Any] = {
    "heartbeat_timeout": 1.0,
    "backoff_initial": 0.01,
    "backoff_max": 0.2,
    "subscribe_pacing": 0.0,
}


def fast(url: str, **kwargs: Any) -> FeedOptions:
    """Options for a test: short timeouts, the given URL, ``kwargs`` on top."""
    return FeedOptions(url=url, **{**FAST, **kwargs})
DEFAULTS = ["BTC/USD", "ETH/USD", "SOL/USD", "DOGE/USD", "PEPE/USD"]


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(seed=7, rate=20.0) as server:
        yield server


async def until(cond: Callable[[], bool], within: float, what: str) -> float:
    """Poll ``cond`` every 10 ms; returns the seconds it took, fails after ``within``."""
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > within:
            pytest.fail(f"not within {within} s: {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def books_equal(client: FeedClient, sim: SimServer, pairs: list[str], depth: int) -> bool:
    for p in pairs:
        book = client.book(p)
        if book is None:
            return False
        bids, asks = sim.book_view(p, depth)
        if book.bids() != bids or book.asks() != asks:
            return False
    return True


async def assert_books_match(client: FeedClient, sim: SimServer, pairs: list[str],
                             depth: int) -> None:
    """Freeze the sim, let the client drain its socket, compare every book exactly."""
    await sim.pause()
    await until(lambda: books_equal(client, sim, pairs, depth), 2.0,
                "the client's books equal the simulator's")


def live(client: FeedClient, pairs: list[str] | None = None) -> bool:
    st = client.status()
    return all(st[p].state is PairState.LIVE for p in (pairs or list(st)))


@pytest.mark.parametrize("depth", [10, 100])
@pytest.mark.slow
async def test_books_equal_the_simulators_book(depth: int) -> None:
    async with SimServer(seed=depth, rate=25.0, synthetic=16) as sim:
        pairs = sim.symbols  # 14 well-known pairs + 16 synthetic ones, many precisions
        async with FeedClient(fast(sim.url, depth=depth, subscribe_batch=7), pairs) as client:
            async with asyncio.timeout(5):
                await client.wait_live()
            # let the books move
            await until(lambda: all(st.frames > 10 for st in client.status().values()), 5.0,
                        "more than 10 frames for every pair")
            await assert_books_match(client, sim, pairs, depth)
            status = client.status()
            assert all(st.frames > 10 for st in status.values())
            assert sum(st.mismatches + st.resyncs + st.crossed for st in status.values()) == 0
            assert client.connection_status().bad_frames == 0
            assert client.connection_status().reconnects == 0
            assert all(client.book(p).depth == depth for p in pairs)  # type: ignore[union-attr]


async def test_corrupted_checksum_resyncs_only_that_pair(sim: SimServer) -> None:
    seen: list[FeedEvent] = []
    async with FeedClient(fast(sim.url), DEFAULTS, on_state_change=seen.append) as client:
        async with asyncio.timeout(5):
            await client.wait_live()
        before = client.status()
        assert await sim.fault("corrupt", symbol="ETH/USD") == 1
        await until(lambda: client.status()["ETH/USD"].resyncs == 1, 2.0, "ETH/USD resyncs")
        took = await until(lambda: client.book("ETH/USD") is not None, 2.0,
                           "ETH/USD verified again")
        after = client.status()
        assert after["ETH/USD"].mismatches == 1
        assert after["ETH/USD"].state is PairState.LIVE
        for p in DEFAULTS:
            if p != "ETH/USD":
                assert after[p].resyncs == before[p].resyncs == 0, p
                assert after[p].mismatches == 0, p
                assert after[p].state is PairState.LIVE, p
        assert client.connection_status().reconnects == 0
        eth = [(e.old, e.new) for e in seen if e.pair == "ETH/USD"]
        assert eth[-2:] == [(PairState.LIVE, PairState.RESYNCING),
                            (PairState.RESYNCING, PairState.LIVE)]
        assert "checksum mismatch" in next(e.reason for e in seen
                                           if e.new is PairState.RESYNCING)
        assert took < 2.0
        await assert_books_match(client, sim, DEFAULTS, 10)


async def test_dropped_connection_reconnects_and_resubscribes(sim: SimServer) -> None:
    async with FeedClient(fast(sim.url), DEFAULTS) as client:
        async with asyncio.timeout(5):
            await client.wait_live()
        assert await sim.fault("drop") == 1
        await until(lambda: client.connection_status().reconnects == 1 and live(client), 3.0,
                    "reconnected and live")
        assert all(st.reconnects == 1 for st in client.status().values())
        assert sim.subscriptions() == dict.fromkeys(DEFAULTS, 1)
        assert sim.stats.connections_total == 2
        await assert_books_match(client, sim, DEFAULTS, 10)


@pytest.mark.slow
async def test_stall_marks_everything_stale_then_reconnects(sim: SimServer) -> None:
    seen: list[FeedEvent] = []
    pairs = DEFAULTS[:3]
    async with FeedClient(fast(sim.url), pairs, on_state_change=seen.append) as client:
        async with asyncio.timeout(5):
            await client.wait_live()
        assert await sim.fault("stall", seconds=5.0) == 1
        await until(lambda: client.connection_status().reconnects == 1 and live(client), 4.0,
                    "stale, then reconnected and live")
        for p in pairs:
            states = [e.new for e in seen if e.pair == p]
            assert states[-3:] == [PairState.STALE, PairState.CONNECTING, PairState.LIVE], p
        stale = next(e for e in seen if e.new is PairState.STALE)
        assert "no frame for 1 s" in stale.reason
        assert client.connection_status().last_error == "no frame for 1 s"
        await assert_books_match(client, sim, pairs, 10)


@pytest.mark.slow
async def test_a_quiet_market_is_not_stale(sim: SimServer) -> None:
    """No book update for twice the heartbeat timeout: heartbeats (and pongs) keep it live."""
    async with FeedClient(fast(sim.url), ["BTC/USD", "ETH/USD"]) as client:
        async with asyncio.timeout(5):
            await client.wait_live()
        await sim.pause()
        paused_at = time.time()
        # book frames sent before the pause may still be on their way through the client:
        # counted once a frame sent after it (a heartbeat) has been read behind them, and the
        # processor has had its turn at the queue they wait in
        await until(lambda: (client.connection_status().last_frame_time or 0) > paused_at,
                    4.0, "a frame after the pause")
        await asyncio.sleep(0)
        frames = {p: st.frames for p, st in client.status().items()}
        # frames (heartbeats, pongs) still arriving twice the heartbeat timeout later
        await until(lambda: (client.connection_status().last_frame_time or 0) >= paused_at + 2.0,
                    4.0, "a frame 2 s after the pause")
        after = client.status()
        assert all(st.state is PairState.LIVE for st in after.values())
        assert {p: st.frames for p, st in after.items()} == frames  # nothing moved
        assert client.connection_status().reconnects == 0
        await assert_books_match(client, sim, ["BTC/USD", "ETH/USD"], 10)


async def test_unknown_pair_reports_the_exchanges_error(sim: SimServer) -> None:
    async with FeedClient(fast(sim.url), ["BTC/USD", "NOPE/USD"]) as client:
        await until(lambda: client.status()["NOPE/USD"].state is PairState.ERROR, 3.0,
                    "NOPE/USD in error")
        async with asyncio.timeout(3):
            await client.wait_live()  # every pair not in error
        st = client.status()
        assert st["NOPE/USD"].error == "Currency pair not supported NOPE/USD"
        assert st["NOPE/USD"].to_dict()["state"] == "error"
        assert st["BTC/USD"].state is PairState.LIVE and st["BTC/USD"].error is None
        assert client.book("NOPE/USD") is None
        with pytest.raises(FeedError, match="NOPE/USD: Currency pair not supported NOPE/USD"):
            await client.wait_live(["BTC/USD", "NOPE/USD"])
    with pytest.raises(FeedError, match="stopped"):
        await client.wait_live()


async def test_add_and_remove_pairs_while_running(sim: SimServer) -> None:
    async with FeedClient(fast(sim.url), ["BTC/USD"]) as client:
        async with asyncio.timeout(5):
            await client.wait_live()
        await client.add_pairs(["ETH/USD", "SOL/USD"])
        assert client.pairs == ("BTC/USD", "ETH/USD", "SOL/USD")
        async with asyncio.timeout(3):
            await client.wait_live(["ETH/USD", "SOL/USD"])
        await client.remove_pairs(["BTC/USD"])
        assert client.pairs == ("ETH/USD", "SOL/USD")
        assert "BTC/USD" not in client.status() and client.book("BTC/USD") is None
        await until(lambda: "BTC/USD" not in sim.subscriptions(), 2.0, "BTC/USD unsubscribed")
        assert sim.subscriptions() == {"ETH/USD": 1, "SOL/USD": 1}
        # removed and added back before the unsubscribe went out: cycled to a fresh snapshot
        await client.remove_pairs(["SOL/USD"])
        await client.add_pairs(["SOL/USD"])
        async with asyncio.timeout(2):
            await client.wait_live(["SOL/USD"])
        assert client.connection_status().reconnects == 0
        assert sim.subscriptions() == {"ETH/USD": 1, "SOL/USD": 1}
        await assert_books_match(client, sim, ["ETH/USD", "SOL/USD"], 10)


class ThreadedSim:
    """The simulator on its own event loop in a thread, like a real exchange: it goes on
    sending while the client's loop is blocked."""

    def __init__(self, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.sim = SimServer(**kwargs)

    async def call(self, coro: Any) -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def __aenter__(self) -> SimServer:
        self.thread.start()
        await self.call(self.sim.start())
        return self.sim

    async def __aexit__(self, *exc: object) -> None:
        await self.call(self.sim.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.mark.slow
async def test_queue_overflow_drops_the_connection_and_resyncs_everything() -> None:
    threaded = ThreadedSim(seed=3, rate=100.0)
    async with threaded as sim:
        pairs = sim.symbols
        blocked = False

        def slow_once(_frame: str) -> None:
            # block the client's loop once while the exchange keeps sending: a burst of
            # hundreds of frames is waiting when it wakes, far more than the queue holds
            nonlocal blocked
            if not blocked and live(client):
                blocked = True
                sent = sim.stats.book_frames + 200  # four times what the queue holds
                deadline = time.monotonic() + 5
                while sim.stats.book_frames < sent and time.monotonic() < deadline:
                    time.sleep(0.01)

        client = FeedClient(fast(sim.url, queue_size=50), pairs, on_frame=slow_once)
        async with client:
            await until(lambda: client.connection_status().overflows == 1, 3.0, "overflow")
            await until(lambda: client.connection_status().reconnects == 1 and live(client),
                        3.0, "reconnected and live")
            assert client.connection_status().last_error == "frame queue full (50 frames)"
            assert sum(st.mismatches for st in client.status().values()) == 0
            assert all(st.reconnects == 1 for st in client.status().values())
            await threaded.call(sim.pause())
            # a loaded machine may overflow the tiny queue again before the pause: the client
            # then resyncs once more, and the books must still end up equal
            await until(lambda: books_equal(client, sim, pairs, 10), 5.0, "books equal")


@pytest.mark.slow
async def test_maintenance_is_reported_and_then_online(sim: SimServer) -> None:
    async with FeedClient(fast(sim.url), ["BTC/USD"]) as client:
        async with asyncio.timeout(5):
            await client.wait_live()
        await sim.fault("maintenance", seconds=0.5)
        await until(lambda: client.connection_status().system == "maintenance", 1.0,
                    "maintenance seen")
        await until(lambda: client.connection_status().system == "online", 2.0, "online again")
        assert client.status()["BTC/USD"].state is PairState.LIVE


async def test_maintenance_close_waits_five_seconds_before_reconnecting(
    sim: SimServer,
) -> None:
    async with FeedClient(fast(sim.url), ["BTC/USD"]) as client:
        async with asyncio.timeout(5):
            await client.wait_live()
        await sim.fault("maintenance", seconds=0.2, close=True)
        await until(lambda: client.connection_status().state == "waiting", 1.0,
                    "closed, waiting to retry")
        conn = client.connection_status()
        # far beyond backoff_max=0.2: only maintenance holds it
        assert conn.retry_in is not None and conn.retry_in >= 5.0
        assert conn.retry_at is not None
        assert not conn.connected
        assert conn.reconnects == 0
        assert client.status()["BTC/USD"].state is PairState.STALE


async def test_replay_mode_serves_the_recording_and_it_verifies(shared_recording: Path) -> None:
    async with SimServer(replay=shared_recording, speed=0) as sim:
        async with FeedClient(fast(sim.url), ["BTC/USD"]) as client:
            await until(lambda: client.status()["BTC/USD"].frames >= 510, 5.0, "510 frames")
            st = client.status()["BTC/USD"]
            assert (st.frames, st.mismatches, st.resyncs, st.state) == (
                510, 0, 0, PairState.LIVE)
            book = client.book("BTC/USD")
            assert book is not None and book.precision.price == 1 and book.precision.qty == 8


async def test_events_iterator_reports_state_changes(sim: SimServer) -> None:
    async with FeedClient(fast(sim.url), ["BTC/USD", "ETH/USD"]) as client:
        got: list[FeedEvent] = []
        async with asyncio.timeout(5):
            async for ev in client.events():
                got.append(ev)
                if sum(e.new is PairState.LIVE for e in got) == 2:
                    break
        assert {e.pair for e in got} == {"BTC/USD", "ETH/USD"}
        assert all(e.old is PairState.CONNECTING and e.new is PairState.LIVE for e in got)
        assert got[0].to_dict()["new"] == "live" and got[0].time > 0
    # after stop the iterator ends instead of hanging
    async with asyncio.timeout(1):
        rest = [ev async for ev in client.events()]
    assert all(isinstance(e, FeedEvent) for e in rest)


async def test_events_queue_drops_the_oldest_when_nobody_reads(sim: SimServer) -> None:
    async with FeedClient(fast(sim.url), DEFAULTS, event_queue_size=2) as client:
        async with asyncio.timeout(5):
            await client.wait_live()
        assert client.connection_status().events_dropped == len(DEFAULTS) - 2
        first = await anext(aiter(client.events()))
        assert first.pair == DEFAULTS[-2]


async def test_injected_clock_stamps_statuses_and_events(sim: SimServer) -> None:
    now = [1_700_000_000.0]
    seen: list[FeedEvent] = []
    async with FeedClient(fast(sim.url), ["BTC/USD"], clock=lambda: now[0],
                          on_state_change=seen.append) as client:
        async with asyncio.timeout(5):
            await client.wait_live()
        st = client.status()["BTC/USD"]
        assert st.last_frame_time == st.since == seen[0].time == 1_700_000_000.0


async def test_unreachable_url_gives_up_only_when_asked() -> None:
    url = f"ws://127.0.0.1:{free_port()}/v2"
    client = FeedClient(fast(url), ["BTC/USD"], give_up_after=2)
    with pytest.raises(BackendUnavailable, match="cannot connect"):
        async with asyncio.timeout(3):
            await client.run()
    forever = FeedClient(fast(url), ["BTC/USD"])
    async with forever:
        await until(lambda: forever.connection_status().connect_failures >= 3, 3.0, "retries")
        assert forever.status()["BTC/USD"].state is PairState.CONNECTING


def test_bad_depth_and_bad_pairs_are_refused_before_anything_is_sent() -> None:
    with pytest.raises(InputError, match="depth 15"):
        FeedClient(fast("ws://127.0.0.1:1/v2", depth=15), ["BTC/USD"])
    with pytest.raises(ConfigError, match="not a WebSocket URL"):
        FeedClient(fast("http://127.0.0.1:1/v2"), ["BTC/USD"])
    for bad in ("BTCUSD", "BTC/", "/USD", "BTC/USD/EUR", "BTC /USD", ""):
        with pytest.raises(InvalidPair):
            FeedClient(fast("ws://127.0.0.1:1/v2"), [bad])


def test_the_client_takes_every_kraken_key_as_one_options_value() -> None:
    k = KrakenSettings(url="ws://127.0.0.1:9/v2", pairs=["ETH/USD"], depth=25,
                       heartbeat_timeout=2.5, subscribe_batch=3, subscribe_pacing=0.1,
                       queue_size=77, backoff_initial=0.1, backoff_max=9.0, ack_timeout=4.0,
                       open_timeout=3.0)
    options = as_options(k, FeedOptions)
    assert options == FeedOptions(url="ws://127.0.0.1:9/v2", depth=25, heartbeat_timeout=2.5,
                                  subscribe_batch=3, subscribe_pacing=0.1, queue_size=77,
                                  backoff_initial=0.1, backoff_max=9.0, ack_timeout=4.0,
                                  open_timeout=3.0)
    c = FeedClient(options, k.pairs)
    o = c.options
    assert (c.url, c.pairs, o.depth, o.heartbeat_timeout, o.subscribe_batch,
            o.subscribe_pacing, o.queue_size) == (
        "ws://127.0.0.1:9/v2", ("ETH/USD",), 25, 2.5, 3, 0.1, 77)
    assert FeedClient(options, ["BTC/USD"]).pairs == ("BTC/USD",)


@pytest.mark.slow
async def test_a_storm_of_faults_ends_with_every_book_exact(sim: SimServer) -> None:
    """Drops, corrupt checksums and stalls at random for 3 s; then the books must converge
    to the simulator's exactly, with no bad frame and no reconnect left hanging."""
    rng = random.Random(2024)
    kinds: list[Any] = ["drop", "corrupt", "corrupt", "corrupt", "stall"]
    injected: dict[str, int] = {}
    async with FeedClient(fast(sim.url), DEFAULTS) as client:
        async with asyncio.timeout(5):
            await client.wait_live()
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            kind = rng.choice(kinds)
            await sim.fault(kind, symbol=rng.choice(DEFAULTS), seconds=rng.uniform(0.2, 1.2))
            injected[kind] = injected.get(kind, 0) + 1
            await asyncio.sleep(rng.uniform(0.05, 0.3))
        async with asyncio.timeout(5):
            await client.wait_live()
        await assert_books_match(client, sim, DEFAULTS, 10)
        status = client.status()
        conn = client.connection_status()
        assert conn.bad_frames == 0 and conn.overflows == 0
        assert conn.reconnects >= 1 and sum(st.resyncs for st in status.values()) >= 1
        assert all(st.resyncs == st.mismatches + st.crossed for st in status.values())
        assert sim.subscriptions() == dict.fromkeys(DEFAULTS, 1)
