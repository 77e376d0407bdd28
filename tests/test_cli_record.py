"""``kms record`` (``cli/record.py``) against the simulator: the file it writes verifies with
``kms replay``; Ctrl-C, a bad depth or URL and an unreachable feed end it with one line.

The simulator runs in the test's event loop on 127.0.0.1; ``kms`` runs as a real process,
exactly as a user would run it. The library under it is ``test_feed_recorder.py``'s.
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
from krakenstream.sim.server import SimServer

#: kms record as a real process: seconds each
pytestmark = pytest.mark.slow

KMS = str(Path(sys.executable).parent / "kms")


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(seed=11, rate=20.0) as server:
        yield server


async def kms(*args: str, interrupt_at: Path | None = None) -> tuple[int, str, str]:
    """Run ``kms`` with ``args``; with ``interrupt_at``, SIGINT it once that file holds three
    whole frames (the recording is under way: the signal handlers are set)."""
    proc = await asyncio.create_subprocess_exec(
        KMS, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    if interrupt_at is not None:
        async with asyncio.timeout(15):
            while _lines(interrupt_at) < 3:  # noqa: ASYNC110 - another process writes it
                await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


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
                                     interrupt_at=out)
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
