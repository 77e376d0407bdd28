"""``kms record`` against the simulator: the file it writes verifies with ``kms replay``.

The simulator runs in the test's event loop on 127.0.0.1; ``kms`` runs as a real process,
exactly as a user would run it.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from krakenstream.core.replay import replay_lines
from krakenstream.errors import FeedError
from krakenstream.feed.recorder import Recorder, record
from krakenstream.sim.server import SimServer

KMS = str(Path(sys.executable).parent / "kms")


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(seed=11, rate=20.0) as server:
        yield server


async def kms(*args: str, signal_after: float | None = None,
              wait_for: Path | None = None) -> tuple[int, str, str]:
    """Run ``kms`` with ``args``; optionally SIGINT it once ``wait_for`` has content."""
    proc = await asyncio.create_subprocess_exec(
        KMS, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    if signal_after is not None:
        async with asyncio.timeout(15):
            while _size(wait_for) < 2000:  # noqa: ASYNC110 - another process writes it
                await asyncio.sleep(0.05)
        await asyncio.sleep(signal_after)
        proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _size(path: Path | None) -> int:
    return path.stat().st_size if path is not None and path.exists() else 0


async def test_kms_record_writes_a_file_kms_replay_verifies(
    sim: SimServer, tmp_path: Path, kms_home: Path
) -> None:
    out = tmp_path / "rec.jsonl"
    pairs = ["BTC/USD", "ETH/USD", "PEPE/USD"]
    code, stdout, stderr = await kms("record", *pairs, "--out", str(out), "--url", sim.url,
                                     "--duration", "1.5", "--depth", "25")
    assert code == 0, stderr
    assert stdout.startswith("recorded ") and stdout.count("\n") == 1
    assert all(f"{p} live" in stdout for p in pairs)
    lines = out.read_text().splitlines()
    assert all(line.startswith("{") for line in lines)
    frames = [orjson.loads(line) for line in lines]
    assert frames[0]["channel"] == "status"  # as received, from the very first frame
    assert any(f.get("channel") == "instrument" for f in frames)
    acks = [f for f in frames if f.get("method") == "subscribe" and
            f.get("result", {}).get("channel") == "book"]
    assert sorted(a["result"]["symbol"] for a in acks) == pairs
    assert all(a["result"]["depth"] == 25 for a in acks)

    code, stdout, stderr = await kms("replay", str(out), "--check", "--json")
    assert code == 0, stderr
    report = orjson.loads(stdout)
    assert sorted(report) == pairs
    for p in pairs:
        assert report[p]["mismatches"] == 0 and report[p]["verified"] == report[p]["frames"]
        assert report[p]["frames"] > 15 and report[p]["depth"] == 25


async def test_ctrl_c_stops_cleanly_with_a_summary(
    sim: SimServer, tmp_path: Path, kms_home: Path
) -> None:
    out = tmp_path / "rec.jsonl"
    code, stdout, stderr = await kms("record", "ETH/USD", "--out", str(out), "--url", sim.url,
                                     signal_after=0.3, wait_for=out)
    assert code == 0, stderr
    assert stdout.startswith("recorded ") and "ETH/USD live" in stdout
    assert "Traceback" not in stderr
    data = out.read_bytes()
    assert data.endswith(b"\n")  # flushed and closed: no half line
    result = replay_lines(data.splitlines())
    assert result.bad_frames == 0 and result.mismatches == 0
    assert result.pairs["ETH/USD"].frames > 1


async def test_unreachable_url_is_one_line_and_a_hint(tmp_path: Path, kms_home: Path) -> None:
    from conftest import free_port

    url = f"ws://127.0.0.1:{free_port()}/v2"
    code, stdout, stderr = await kms("record", "BTC/USD", "--out", str(tmp_path / "x.jsonl"),
                                     "--url", url, "--duration", "5")
    assert code == 1
    assert "Traceback" not in stderr
    err_lines = stderr.strip().splitlines()
    assert err_lines[0].startswith(f"error: cannot connect to {url}")
    assert err_lines[1].startswith("hint:") and len(err_lines) == 2


async def test_bad_depth_or_url_is_refused_before_the_file_is_touched(
    tmp_path: Path, kms_home: Path
) -> None:
    code, _, stderr = await kms("record", "BTC/USD", "--out", str(tmp_path / "x.jsonl"),
                                "--url", "ws://127.0.0.1:9/v2", "--depth", "20")
    assert code == 1 and "20 is not one of 10, 25, 100, 500, 1000" in stderr
    assert not (tmp_path / "x.jsonl").exists()
    code, _, stderr = await kms("record", "BTC/USD", "--out", str(tmp_path / "x.jsonl"),
                                "--url", "http://127.0.0.1:9/v2")
    assert code == 1 and "is not a WebSocket URL" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "x.jsonl").exists()


async def test_every_pair_refused_is_an_error_with_krakens_words(
    sim: SimServer, tmp_path: Path
) -> None:
    stop = asyncio.Event()

    async def stop_when_refused() -> None:
        await asyncio.sleep(0.5)
        stop.set()

    task = asyncio.create_task(stop_when_refused())
    with pytest.raises(FeedError, match="Currency pair not supported NOPE/USD"):
        await record(["NOPE/USD"], tmp_path / "x.jsonl", url=sim.url, stop=stop)
    await task


async def test_record_library_call_stops_on_the_event(sim: SimServer, tmp_path: Path) -> None:
    stop = asyncio.Event()
    out = tmp_path / "lib.jsonl"

    async def later() -> None:
        await asyncio.sleep(0.6)
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
