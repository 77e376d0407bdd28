"""The feed pool (feed/pool.py): pairs and patterns over several connections, on loopback.

Against the simulator: patterns resolved from its listing, pairs spread over connections, one
connection cut while the others stay live. Against a scripted exchange: the listing changing
under a running pool (pairs listed, delisted, going offline).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from krakenstream.core.checksum import checksum
from krakenstream.errors import FeedError
from krakenstream.feed import FeedEvent, FeedOptions, PairState
from krakenstream.feed.pool import FeedPool
from krakenstream.sim.server import SimServer


def fast(url: str, **kwargs: Any) -> FeedOptions:
    base: dict[str, Any] = {"heartbeat_timeout": 1.0, "backoff_initial": 0.01,
                            "backoff_max": 0.2, "subscribe_pacing": 0.0,
                            "connect_spacing": 0.0}
    return FeedOptions(url=url, **{**base, **kwargs})


async def until(cond: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        await asyncio.sleep(0.01)


def online(sim: SimServer, quote: str) -> list[str]:
    """The simulator's online pairs in ``quote``, from its own listing."""
    return [p["symbol"] for p in sim.market.instrument_data()["pairs"]
            if p["quote"] == quote and p["status"] == "online"]


# -- against the simulator ------------------------------------------------------------------


async def test_a_pattern_takes_the_listed_online_pairs_spread_over_connections() -> None:
    async with SimServer(seed=5, rate=20.0, synthetic=30) as sim:
        usd = online(sim, "USD")
        assert len(usd) < len([s for s in sim.symbols if s.endswith("/USD")])  # some offline
        async with FeedPool(fast(sim.url, pairs_per_connection=8), ["*/USD"]) as pool:
            async with asyncio.timeout(10):
                await pool.wait_live()
            assert sorted(pool.pairs) == sorted(usd)
            conns = pool.connections()
            assert len(conns) == -(-len(usd) // 8)  # as few as the cap allows
            assert [c.pairs for c in conns[:-1]] == [8] * (len(conns) - 1)
            assert all(c.connected and c.state == "connected" for c in conns)
            assert len({c.connection_id for c in conns}) == len(conns)
            total = pool.connection_status()
            assert total.connected and total.pairs == len(usd) and total.name == "pool"
            assert sim.subscriptions() == dict.fromkeys(usd, 1)
            # a pattern tracked at run time answers with what it added, and follows it
            eur = online(sim, "EUR")
            assert sorted(await pool.track("*/EUR")) == sorted(eur)
            async with asyncio.timeout(10):
                await pool.wait_live(eur)
            assert sorted(await pool.untrack("*/EUR")) == sorted(eur)
            assert sorted(pool.pairs) == sorted(usd)
            await until(lambda: set(sim.subscriptions()) == set(usd), 3.0, "EUR unsubscribed")
            await sim.pause()
            await until(lambda: all(
                (b := pool.book(p)) is not None
                and (b.bids(), b.asks()) == sim.book_view(p, 10) for p in usd),
                5.0, "every book equals the simulator's")


async def test_a_cut_connection_resyncs_only_its_pairs() -> None:
    seen: list[FeedEvent] = []
    async with SimServer(seed=9, rate=20.0, synthetic=12) as sim:
        options = fast(sim.url, pairs_per_connection=4)
        async with FeedPool(options, ["*/USD"], on_state_change=seen.append) as pool:
            async with asyncio.timeout(10):
                await pool.wait_live()
            conns = pool.connections()
            assert len(conns) >= 3
            victim = conns[1]
            placed = pool.placement()
            cut = [p for p, name in placed.items() if name == victim.name]
            others = [p for p, name in placed.items() if name != victim.name]
            books = {p: pool.book(p) for p in others}
            ids = {c.name: c.connection_id for c in conns}
            mark = len(seen)
            assert victim.connection_id is not None
            assert await sim.fault("drop", connection=victim.connection_id) == 1

            def back() -> bool:
                c = next(c for c in pool.connections() if c.name == victim.name)
                return c.reconnects == 1 and pool.all_live(cut)

            await until(back, 5.0, "the cut connection back and its pairs live")
            after = seen[mark:]
            for p in cut:  # its own pairs went stale and came back
                states = [e.new for e in after if e.pair == p]
                assert states[-3:] == [PairState.STALE, PairState.CONNECTING, PairState.LIVE], p
            # the other connections' pairs never left live and kept their very books
            assert [e for e in after if e.pair in others] == []
            status = pool.status()
            for p in others:
                assert pool.book(p) is books[p], p
                assert status[p].reconnects == 0 and status[p].resyncs == 0, p
            for c in pool.connections():
                if c.name != victim.name:
                    assert c.reconnects == 0 and c.connection_id == ids[c.name], c.name
            assert sim.subscriptions() == dict.fromkeys(pool.pairs, 1)
            assert pool.connection_status().reconnects == 1


async def test_held_the_pool_reads_frames_but_applies_none_until_let_go() -> None:
    """What the publish tick holds: frames go on arriving (read off the sockets into their
    connection's queue) but no book changes, on any connection, until the hold ends; then
    every waiting frame is applied, none lost (the books end equal to the simulator's)."""
    read = 0

    def on_frame(_: str) -> None:
        nonlocal read
        read += 1

    async with SimServer(seed=3, rate=40.0, synthetic=12) as sim:
        options = fast(sim.url, pairs_per_connection=4)
        async with FeedPool(options, ["*/USD"], on_frame=on_frame) as pool:
            async with asyncio.timeout(10):
                await pool.wait_live()
            assert len(pool.connections()) >= 2
            with pool.held():
                applied = {p: st.frames for p, st in pool.status().items()}
                books = {p: (b.bids(), b.asks()) for p in pool.pairs
                         if (b := pool.book(p)) is not None}
                mark = read
                await until(lambda: read >= mark + 50, 5.0, "frames read while held")
                assert {p: st.frames for p, st in pool.status().items()} == applied
                assert {p: (b.bids(), b.asks()) for p in pool.pairs
                        if (b := pool.book(p)) is not None} == books
            await until(lambda: all(st.frames > applied[p]
                                    for p, st in pool.status().items()), 5.0,
                        "the waiting frames applied")
            await sim.pause()
            await until(lambda: all(
                (b := pool.book(p)) is not None
                and (b.bids(), b.asks()) == sim.book_view(p, 10) for p in pool.pairs),
                5.0, "every book equals the simulator's")


@pytest.mark.slow
async def test_connections_open_one_after_the_other() -> None:
    async with SimServer(seed=2, rate=5.0) as sim:
        options = fast(sim.url, pairs_per_connection=3, connect_spacing=0.2)
        started = time.time()
        async with FeedPool(options, sim.symbols[:12]) as pool:
            async with asyncio.timeout(10):
                await pool.wait_live()
            opened = sorted(c.connected_since or 0.0 for c in pool.connections())
            assert len(opened) == 4
            # four attempts 0.2 s apart: the last cannot have connected before 0.6 s
            assert opened[-1] - started >= 0.6 - 0.01, [t - started for t in opened]


async def test_a_spent_connection_budget_is_waited_for_and_said() -> None:
    async with SimServer(seed=2, rate=5.0) as sim:
        options = fast(sim.url, pairs_per_connection=2, connect_limit=1)
        async with FeedPool(options, sim.symbols[:4]) as pool:
            async with asyncio.timeout(10):
                await pool.wait_live(sim.symbols[:2])
            second = pool.connections()[1]
            # one attempt in any 10 minutes: the second connection waits its turn, and says so
            assert second.state == "waiting" and not second.connected
            assert second.retry_in is not None and second.retry_in > 590
            assert pool.status()[sim.symbols[2]].state is PairState.CONNECTING
            assert sim.stats.connections_total == 1


async def test_a_failed_connection_stops_the_pool_and_nothing_stays_live() -> None:
    failing = {"armed": False}

    def hook(_frame: str) -> None:
        if failing["armed"]:
            raise OSError(28, "No space left on device")

    async with SimServer(seed=4, rate=10.0) as sim:
        pool = FeedPool(fast(sim.url, pairs_per_connection=2), sim.symbols[:6], on_frame=hook)
        await pool.start()
        async with asyncio.timeout(10):
            await pool.wait_live()
        failing["armed"] = True
        async with asyncio.timeout(5):
            await pool.wait_stopped()
        assert all(st.state is PairState.STALE for st in pool.status().values())
        with pytest.raises(OSError, match="No space left"):
            await pool.stop()
        with pytest.raises(FeedError, match="stopped"):
            await pool.wait_live()


# -- against a scripted exchange whose listing changes ----------------------------------------


def book_frame(symbol: str) -> dict[str, Any]:
    bids, asks = [(99.9, 1.0)], [(100.1, 1.0)]
    crc = checksum([(1001, 10**8)], [(999, 10**8)])
    return {"channel": "book", "type": "snapshot", "data": [{
        "symbol": symbol, "checksum": crc,
        "bids": [{"price": p, "qty": q} for p, q in bids],
        "asks": [{"price": p, "qty": q} for p, q in asks]}]}


class Listed:
    """An exchange that lists what it is told and can change its listing on every
    connection at once."""

    def __init__(self, listing: dict[str, str]) -> None:
        self.listing = listing
        self.conns: set[ServerConnection] = set()
        self.unsubscribed: list[str] = []
        self.url = ""

    def instrument(self, kind: str, statuses: dict[str, str]) -> bytes:
        return orjson.dumps({"channel": "instrument", "type": kind, "data": {"assets": [],
                             "pairs": [{"symbol": s, "price_precision": 1, "qty_precision": 8,
                                        "status": st} for s, st in statuses.items()]}})

    async def handler(self, ws: ServerConnection) -> None:
        self.conns.add(ws)
        with contextlib.suppress(ConnectionClosed):
            await ws.send('{"channel":"status","type":"update","data":[{"system":"online"}]}')
            async for raw in ws:
                await self.answer(ws, orjson.loads(raw))
        self.conns.discard(ws)

    async def answer(self, ws: ServerConnection, req: dict[str, Any]) -> None:
        method, params = req.get("method"), req.get("params", {})
        if method == "ping":
            await ws.send(orjson.dumps({"method": "pong", "req_id": req["req_id"]}))
            return
        if params.get("channel") == "instrument":
            await ws.send(orjson.dumps({"method": "subscribe", "req_id": req["req_id"],
                                        "success": True, "result": {"channel": "instrument"}}))
            await ws.send(self.instrument("snapshot", self.listing))
            return
        for s in params["symbol"]:
            await ws.send(orjson.dumps({"method": method, "req_id": req["req_id"],
                                        "success": True, "result": {
                                            "channel": "book", "depth": 10, "symbol": s}}))
            if method == "subscribe":
                await ws.send(orjson.dumps(book_frame(s)))
            else:
                self.unsubscribed.append(s)

    async def change(self, kind: str, statuses: dict[str, str]) -> None:
        if kind == "snapshot":
            self.listing = dict(statuses)
        else:
            self.listing.update(statuses)
        frame = self.instrument(kind, statuses)
        for ws in list(self.conns):
            with contextlib.suppress(ConnectionClosed):
                await ws.send(frame)


@pytest.fixture
async def exchange() -> AsyncIterator[Listed]:
    listed = Listed({"A/USD": "online", "B/USD": "online", "C/USD": "maintenance",
                     "D/EUR": "online"})
    async with serve(listed.handler, "127.0.0.1", 0) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        listed.url = f"ws://127.0.0.1:{port}/v2"
        yield listed


async def test_pairs_listed_and_delisted_while_running_are_picked_up_and_dropped(
    exchange: Listed, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="krakenstream.feed.pool")
    changes: list[tuple[list[str], list[str]]] = []
    options = fast(exchange.url, heartbeat_timeout=5.0, pairs_per_connection=2)
    async with FeedPool(options, ["*/USD", "Z/JPY"],
                        on_pairs_changed=lambda a, r: changes.append((a, r))) as pool:
        async with asyncio.timeout(5):
            await pool.wait_live()
        # the pair named is tracked whatever the listing; the pattern takes online USD pairs
        assert pool.pairs == ("Z/JPY", "A/USD", "B/USD")
        assert changes == [(["A/USD", "B/USD"], [])]
        await exchange.change("update", {"C/USD": "online", "B/USD": "delisted",
                                         "E/USD": "online", "F/EUR": "online"})
        await until(lambda: set(pool.pairs) == {"Z/JPY", "A/USD", "C/USD", "E/USD"}, 3.0,
                    "C/USD and E/USD picked up, B/USD dropped")
        async with asyncio.timeout(5):
            await pool.wait_live()
        await until(lambda: "B/USD" in exchange.unsubscribed, 3.0, "B/USD unsubscribed")
        assert changes[-1] == (["C/USD", "E/USD"], ["B/USD"])
        text = caplog.text
        assert "feed listing pair=B/USD status=online->delisted" in text
        assert "feed pool pair dropped pair=B/USD" in text
        assert "feed pool pair added pair=E/USD listed=online pattern=*/USD" in text
        assert "F/EUR" not in text  # a change no pattern looks at is not worth a line
        # a new snapshot leaves A/USD out: unlisted, dropped
        await exchange.change("snapshot", {"C/USD": "online", "E/USD": "online"})
        await until(lambda: set(pool.pairs) == {"Z/JPY", "C/USD", "E/USD"}, 3.0,
                    "A/USD dropped")
        assert "feed listing pair=A/USD status=online->unlisted" in caplog.text
        assert pool.listing() == {"C/USD": "online", "E/USD": "online"}
        # untracked by name, it stays out when listed again
        assert await pool.untrack("C/USD") == ["C/USD"]
        await exchange.change("update", {"C/USD": "online", "G/USD": "online"})
        await until(lambda: "G/USD" in pool.pairs, 3.0, "G/USD picked up")
        assert "C/USD" not in pool.pairs
        # connections left without pairs close; the lead stays
        await pool.untrack("*/USD")
        await until(lambda: len(pool.connections()) == 1, 3.0, "empty connections closed")
        assert pool.pairs == ("Z/JPY",)


async def test_patterns_wait_for_the_listing_and_a_shard_takes_its_share(
    exchange: Listed,
) -> None:
    options = fast(exchange.url, heartbeat_timeout=5.0)
    async with FeedPool(options, ["*"], owns=lambda p: p != "B/USD") as pool:
        assert pool.pairs == ()  # nothing before the listing
        async with asyncio.timeout(5):
            await pool.wait_live()
        assert set(pool.pairs) == {"A/USD", "D/EUR"}


async def test_max_pairs_leaves_the_rest_out_and_keeps_what_is_tracked() -> None:
    """A pattern that matches more than ``max_pairs``: the first ``max_pairs`` are tracked,
    the rest counted (and logged once); ``would_track`` tells a caller in advance."""
    async with SimServer(seed=5, rate=20.0, synthetic=30) as sim:
        usd = online(sim, "USD")
        assert len(usd) > 5
        async with FeedPool(fast(sim.url, max_pairs=5), ["ETH/USD", "*/USD"]) as pool:
            async with asyncio.timeout(10):
                await pool.wait_live()
            assert len(pool.pairs) == 5 and pool.pairs[0] == "ETH/USD"
            assert pool.over_max_pairs == len(set(usd) | {"ETH/USD"}) - 5
            before = pool.pairs
            assert pool.would_track("ZZZ/USD") == len(set(usd) | {"ETH/USD"}) + 1
            await pool.untrack_all([before[1], before[2]])  # two out: two others come in
            assert len(pool.pairs) == 5 and before[1] not in pool.pairs
