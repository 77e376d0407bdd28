"""Faults: the x-sim-fault order's checks, its targets, the random draw, and their effects."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
import pytest

from krakenstream.sim.connection import Close, Connection
from krakenstream.sim.faults import (
    FAULT_KINDS,
    FAULT_USAGE,
    FaultOrder,
    Faults,
    draw,
    parse_fault,
    targets,
)
from krakenstream.sim.loops import Flow
from krakenstream.sim.stats import SimStats
from test_sim_connection import make, until


def test_parse_fault_defaults_and_fields() -> None:
    assert parse_fault({"kind": "drop"}) == FaultOrder("drop")
    order = parse_fault({"kind": "maintenance", "scope": "all", "seconds": 3, "close": 1,
                         "symbol": "ETH/USD", "code": 1011})
    assert order == FaultOrder("maintenance", "all", "ETH/USD", 3.0, True, 1011)
    assert isinstance(order.seconds, float)


@pytest.mark.parametrize("params", [
    None, [], {}, {"kind": "explode"}, {"kind": "drop", "scope": "them"},
    {"kind": "stall", "seconds": -1}, {"kind": "stall", "seconds": 3601},
    {"kind": "stall", "seconds": "2"}, {"kind": "corrupt", "symbol": 5},
    {"kind": "drop", "code": 999}, {"kind": "drop", "code": 5000}, {"kind": "drop", "code": 1.5},
])
def test_parse_fault_refuses(params: Any) -> None:
    assert parse_fault(params) is None


def test_usage_names_every_kind() -> None:
    assert all(kind in FAULT_USAGE for kind in FAULT_KINDS)


def test_targets_by_scope() -> None:
    a, b, c = (make()[0] for _ in range(3))
    assert targets("self", a, [a, b, c]) == [a]
    assert targets("all", a, [a, b, c]) == [a, b, c]
    assert targets("others", a, [a, b, c]) == [b, c]


def test_draw_is_seeded_and_aims_maintenance_at_everyone() -> None:
    conns = [make()[0] for _ in range(4)]
    first = [draw(random.Random(5), FAULT_KINDS, conns) for _ in range(1)]
    again = [draw(random.Random(5), FAULT_KINDS, conns) for _ in range(1)]
    assert first == again
    rng = random.Random(1)
    for _ in range(50):
        kind, aimed, seconds = draw(rng, FAULT_KINDS, conns)
        assert 0.5 <= seconds <= 2.5
        assert aimed == conns if kind == "maintenance" else len(aimed) == 1


def _faults(n: int = 2) -> tuple[Faults, list[Connection], SimStats, Flow]:
    conns = {}
    for i in range(n):
        conn = make()[0]
        conn.id = i
        conns[i] = conn
    stats, flow = SimStats(), Flow()
    return Faults(conns, flow, stats, random.Random(1)), list(conns.values()), stats, flow


async def test_inject_each_kind() -> None:
    faults, (a, b), stats, _ = _faults()
    a.session.depths.update({"ETH/USD": 10, "BTC/USD": 10})
    assert faults.inject("corrupt", [a, b], None, 1.0, False) == 1  # b has nothing to corrupt
    assert len(a.corrupt) == 1 and a.corrupt <= {"ETH/USD", "BTC/USD"}
    assert faults.inject("corrupt", [a], "SOL/USD", 1.0, False) == 0  # not subscribed
    now = asyncio.get_running_loop().time()
    assert faults.inject("stall", [b], None, 5.0, False) == 1
    assert b.stalled_until >= now + 5.0
    assert faults.inject("drop", [a], None, 1.0, False) == 1
    assert a.ws.transport.aborted  # type: ignore[attr-defined]
    b.push(b"queued")
    assert faults.inject("drop", [b], None, 1.0, False, code=1011) == 1
    assert list(b.out) == [Close(1011, "dropped by the simulator")] and b.stalled_until == 0.0
    assert stats.faults == {"drop": 2, "corrupt": 2, "stall": 1, "maintenance": 0}


async def test_maintenance_stops_the_flow_then_says_online() -> None:
    faults, (a, b), stats, flow = _faults()
    assert faults.inject("maintenance", [], None, 0.05, close=False) == 2
    assert not flow.moving and flow.maintenance
    await until(lambda: flow.moving)
    for conn in (a, b):
        systems = [orjson.loads(f)["data"][0]["system"] for f in conn.out]  # type: ignore[arg-type]
        assert systems == ["maintenance", "online"]
    faults.inject("maintenance", [], None, 10.0, close=True)
    assert isinstance(a.out[-1], Close) and a.out[-1].code == 1001
    await faults.stop()  # cancels the window: the market stays stopped until told
    assert flow.maintenance and stats.faults["maintenance"] == 2


async def test_control_answers_then_acts() -> None:
    faults, (a, b), stats, _ = _faults()
    faults.control(a, {"kind": "stall", "seconds": 1}, 7, "T")
    ack = orjson.loads(a.out[-1])  # type: ignore[arg-type]
    assert ack["success"] is True and ack["result"] == {"kind": "stall", "scope": "others"}
    assert ack["req_id"] == 7 and b.stalled_until > 0 and a.stalled_until == 0
    faults.control(a, {"kind": "nope"}, 8, "T")
    err = orjson.loads(a.out[-1])  # type: ignore[arg-type]
    assert err["success"] is False and err["error"] == FAULT_USAGE and stats.errors == 1


async def test_random_faults_touch_only_subscribed_connections() -> None:
    faults, (a, b), stats, _ = _faults()
    b.session.depths["ETH/USD"] = 10
    task = asyncio.create_task(faults.run_random(200.0, ("stall",)))
    await until(lambda: stats.faults["stall"] >= 3)
    task.cancel()
    assert a.stalled_until == 0.0 and b.stalled_until > 0
