"""The simulator's unasked-for frames: the market tick's fan-out, heartbeats, replays, the flow."""

from __future__ import annotations

import asyncio
import random

import orjson

from krakenstream.core.book import Verdict
from krakenstream.core.session import BookSession
from krakenstream.sim.loops import (
    CATCH_UP,
    Flow,
    MarketLoop,
    Pacer,
    heartbeats,
    replay,
    wants_heartbeat,
)
from krakenstream.sim.market import DEFAULT_PAIRS, BookStream, Market, synthetic_specs
from krakenstream.sim.stats import SimStats
from test_sim_connection import make, until

TS = "2026-01-01T00:00:00.000000Z"


def test_flow_moves_unless_paused_or_in_maintenance() -> None:
    flow = Flow()
    assert flow.moving
    flow.set_paused(True)
    flow.set_maintenance(True)
    flow.set_paused(False)
    assert not flow.moving  # maintenance still holds it
    flow.set_maintenance(False)
    assert flow.moving
    flow.set_maintenance(True)
    flow.set_maintenance(False)
    flow.set_paused(True)
    assert not flow.moving and flow.paused and not flow.maintenance


def _loop(seed: int = 1) -> tuple[MarketLoop, Market, SimStats]:
    market, stats = Market(DEFAULT_PAIRS, seed), SimStats()
    return MarketLoop(market, 10.0, random.Random(seed), Flow(), stats), market, stats


def test_each_subscriber_gets_its_own_verified_frames() -> None:
    mloop, market, stats = _loop()
    conns = []
    for depth in (10, 100):
        conn, _, _ = make()
        conn.id = depth
        stream = BookStream(market.book("ETH/USD"), depth, random.Random(depth))
        conn.push(orjson.dumps(stream.snapshot(TS)))
        mloop.add(conn, stream)
        conns.append(conn)
    frames = sum(mloop.step_all(1.0, TS) for _ in range(200))
    assert frames == stats.book_frames and frames > 300
    for conn in conns:
        session = BookSession(depth_override=conn.id)
        session.receive(orjson.dumps({"channel": "instrument", "type": "snapshot",
                                      "data": market.instrument_data()}))
        verdicts = [r.verdict for item in conn.out if isinstance(item, bytes)
                    for r in session.receive(item)[1]]
        assert set(verdicts) == {Verdict.VERIFIED} and len(verdicts) > 150


def test_per_tick_chance_and_removal() -> None:
    mloop, market, _ = _loop()
    conn, _, _ = make()
    mloop.add(conn, BookStream(market.book("BTC/USD"), 10, random.Random(1)))
    assert mloop.step_all(0.0, TS) == 0  # a zero chance never steps
    n = sum(mloop.step_all(0.25, TS) for _ in range(400))
    assert 50 < n < 150
    mloop.remove("BTC/USD", conn)
    assert mloop.subs == {}
    mloop.remove("BTC/USD", conn)  # twice is harmless


def test_the_pacer_keeps_the_rate_whatever_the_ticks_timing() -> None:
    period = 0.02
    pacer = Pacer(3.0, period, 0.0)
    # punctual ticks: rate times the period each
    chances = [pacer.tick(i * period, True) for i in range(1, 51)]
    assert all(abs(c - 0.06) < 1e-9 for c in chances)
    # a tick 0.3 s late takes at most CATCH_UP punctual ticks' worth; the next ones make
    # up the rest, and the total is still rate times the time
    late = pacer.tick(1.0 + 0.3, True)
    assert abs(late - CATCH_UP * 0.06) < 1e-9
    t, total = 1.3, late
    for _ in range(20):
        t += period
        total += pacer.tick(t, True)
    assert abs(total - 3.0 * (t - 1.0)) < 1e-9 and pacer.owed == 0.0 and pacer.lost == 0.0


def test_the_pacer_drops_what_it_owes_beyond_one_step_and_nothing_while_still() -> None:
    pacer = Pacer(3.0, 0.02, 0.0)
    assert pacer.tick(2.0, True) == CATCH_UP * 0.06  # 6 steps owed: this tick's, and one more kept
    assert abs(pacer.lost - (6.0 - 1.0 - CATCH_UP * 0.06)) < 1e-9
    assert abs(pacer.owed - 1.0) < 1e-9  # one step per pair still owed
    assert pacer.tick(5.0, False) == 0.0 and pacer.owed == 0.0  # paused: nothing owed
    assert abs(pacer.tick(5.02, True) - 0.06) < 1e-9


def test_a_pair_steps_with_the_tick_s_chance() -> None:
    """The pairs that step are drawn by their gaps: as a coin per pair, on average."""
    market, stats = Market([*DEFAULT_PAIRS, *synthetic_specs(400, 1)], 1), SimStats()
    mloop = MarketLoop(market, 3.0, random.Random(1), Flow(), stats)
    conn, _, _ = make()
    for symbol in market:
        mloop.add(conn, BookStream(market.book(symbol, 10), 10, random.Random(1)))
    n = len(mloop.subs)
    assert mloop.step_all(1.0, TS) == n  # every pair, once
    frames = sum(mloop.step_all(0.06, TS) for _ in range(100))
    expected = n * 0.06 * 100
    assert abs(frames - expected) < 5 * (expected * 0.94) ** 0.5  # five sigmas
    assert stats.book_frames == n + frames


def test_a_corrupt_order_breaks_exactly_one_frame() -> None:
    mloop, market, _ = _loop()
    conn, _, _ = make()
    stream = BookStream(market.book("SOL/USD"), 10, random.Random(1))
    conn.push(orjson.dumps(stream.snapshot(TS)))
    mloop.add(conn, stream)
    for _ in range(5):
        mloop.step_all(1.0, TS)
    conn.corrupt.add("SOL/USD")
    for _ in range(5):
        mloop.step_all(1.0, TS)
    assert not conn.corrupt
    session = BookSession()
    session.receive(orjson.dumps({"channel": "instrument", "type": "snapshot",
                                  "data": market.instrument_data()}))
    verdicts = [r.verdict for item in conn.out if isinstance(item, bytes)
                for r in session.receive(item)[1]]
    assert verdicts.count(Verdict.MISMATCH) == 1


def test_wants_heartbeat() -> None:
    conn, _, _ = make(now=0.0)
    assert not wants_heartbeat(conn, 5.0, 1.0)  # nothing subscribed
    conn.session.instrument = True
    assert wants_heartbeat(conn, 5.0, 1.0)
    assert not wants_heartbeat(conn, 0.5, 1.0)  # sent something lately
    conn.stall(10.0)
    assert not wants_heartbeat(conn, 5.0, 1.0)
    conn.stall(0.0)
    conn.push(b"x")
    assert not wants_heartbeat(conn, 5.0, 1.0)  # frames waiting say enough


async def test_heartbeats_fill_silences_once_per_interval() -> None:
    conn, ws, _ = make(now=asyncio.get_running_loop().time())
    conn.session.instrument = True
    stats = SimStats()
    writer = asyncio.create_task(conn.write())
    beats = asyncio.create_task(heartbeats({conn.id: conn}, 0.05, stats))
    await until(lambda: len(ws.sent) >= 3)
    assert set(ws.sent) == {b'{"channel":"heartbeat"}'} and stats.heartbeats >= 3
    beats.cancel()
    writer.cancel()


async def test_replay_waits_for_the_flow_and_corrupts_one_update() -> None:
    conn, ws, _ = make()
    flow, stats = Flow(), SimStats()
    lines = [b'{"channel":"book","type":"snapshot","data":[{"checksum":1}]}'] + [
        b'{"channel":"book","type":"update","data":[{"checksum":%d}]}' % i for i in range(2, 6)]
    flow.set_paused(True)
    conn.corrupt.add("X/Y")
    task = asyncio.create_task(replay(conn, "X/Y", [(0.0, ln) for ln in lines], 0, flow, stats))
    await asyncio.sleep(0)
    assert not conn.out  # paused: nothing yet
    flow.set_paused(False)
    await asyncio.wait_for(task, 2)
    sums = [orjson.loads(item)["data"][0]["checksum"] for item in conn.out
            if isinstance(item, bytes)]
    assert sums == [1, 2 ^ 1, 3, 4, 5]  # the snapshot is spared; the first update broken
    assert stats.book_frames == 5 and not conn.corrupt
