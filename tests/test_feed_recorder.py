"""``feed/recorder.py``: :func:`record` against the simulator (stopped by its event, a
refusal of every pair an error in Kraken's words) and :class:`Recorder`'s one frame a line.
The command around it is ``test_cli_record.py``'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from krakenstream.errors import FeedError
from krakenstream.feed.recorder import Recorder, record
from krakenstream.sim.server import SimServer
from test_bus_support import wait_until


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(seed=11, rate=20.0) as server:
        yield server


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


async def test_every_pair_refused_is_an_error_with_krakens_words(
    sim: SimServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stop = asyncio.Event()

    caplog.set_level(logging.WARNING, logger="krakenstream.feed.subscriptions")

    def refused() -> bool:  # the client logs the refusal as it takes it in
        return any("subscribe refused pair=NOPE/USD" in r.getMessage() for r in caplog.records)

    async def stop_when_refused() -> None:
        assert await wait_until(refused, within=15), "no refusal logged within 15 s"
        stop.set()

    task = asyncio.create_task(stop_when_refused())
    with pytest.raises(FeedError, match="Currency pair not supported NOPE/USD"):
        await record(["NOPE/USD"], tmp_path / "x.jsonl", url=sim.url, stop=stop)
    await task


async def test_record_library_call_stops_on_the_event(sim: SimServer, tmp_path: Path) -> None:
    stop = asyncio.Event()
    out = tmp_path / "lib.jsonl"

    async def later() -> None:  # stopped once more than 5 frames are on disk
        assert await wait_until(lambda: _lines(out) > 5, within=15), "fewer than 6 frames"
        stop.set()

    task = asyncio.create_task(later())
    summary = await record(["BTC/USD", "SOL/USD"], out, url=sim.url, stop=stop)
    await task
    assert summary.frames == len(out.read_text().splitlines()) > 5
    assert summary.bytes == out.stat().st_size
    assert summary.pairs["BTC/USD"].state.value == "live"
    assert "recorded" in summary.line() and "SOL/USD live" in summary.line()


def test_recorder_keeps_one_frame_per_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    ticks = iter([0.0, 0.1, 0.2, 5.0, 5.1])
    with Recorder(path, clock=lambda: next(ticks)) as rec:
        rec.write('{"channel":"heartbeat"}')
        rec.write('{\n  "channel": "heartbeat"\r\n}')  # pretty JSON: whitespace only
        rec.write('{"a":1}')
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and rec.frames == 3
    assert [orjson.loads(x) for x in lines[:2]] == [{"channel": "heartbeat"}] * 2
    assert rec.bytes == path.stat().st_size
