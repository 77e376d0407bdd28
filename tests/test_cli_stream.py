"""``kms stream``: the loop around the live view, against a fake and the session's daemon."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from rich.console import Console

from cli_support import LiveDaemon, one_error, read_until, run
from krakenstream.cli.stream import run_stream
from krakenstream.client import SnapshotEvent
from krakenstream.core.snapshot import Snapshot

NOW_MS = 1_764_090_000_000  # 2025-11-25T17:00:00Z


def snap(pair: str = "ETH/USD") -> dict[str, Any]:
    return Snapshot(
        pair=pair, ts=NOW_MS, exchange_ts=None, seq=1, price_precision=2, qty_precision=8,
        bids=((300_000, 150_000_000),), asks=((300_001, 200_000_000),), checksum=1,
        gap_before=False,
    ).to_dict()


async def test_a_pair_given_twice_is_streamed_once() -> None:
    asked: list[list[str]] = []

    class Daemon:  # the two calls run_stream makes, answered as a daemon would
        base_url = "http://127.0.0.1:1"

        def pairs(self) -> list[dict[str, Any]]:
            return [{"pair": "ETH/USD", "state": "live"}]

        async def stream(self, pairs: list[str]) -> AsyncIterator[Any]:
            asked.append(list(pairs))
            yield SnapshotEvent("ETH/USD", snap())

    console = Console(width=200, record=True)
    state = await run_stream(Daemon(), ["ETH/USD", "eth-usd", " ETH/USD "],  # type: ignore[arg-type]
                             once=True, console=console)
    assert asked == [["ETH/USD"]] and list(state.views) == ["ETH/USD"]


def test_stream_once(live: LiveDaemon, user_home: Path, token: str) -> None:
    live.wait_snapshots("BTC/USD", token)
    r = run(["stream", "ETH/USD", "btc-usd", "--once", "--depth", "3"], user_home, live.url)
    assert r.exit_code == 0, r.output
    out = r.stdout
    for expected in ("ETH/USD", "BTC/USD", "mid ", "spread ", "bps", "last change 20",
                     "rate ", "bid", "ask", "cum"):
        assert expected in out, expected
    assert "waiting for the first snapshot" not in out
    assert out.count("live") >= 2


def test_stream_untracked_pair(live: LiveDaemon, user_home: Path) -> None:
    one_error(run(["stream", "ETH/USD", "XRP/JPY", "--once"], user_home, live.url),
              f"XRP/JPY is not tracked by the daemon at {live.url}", "kms track XRP/JPY")


def test_stream_for_a_duration(live: LiveDaemon, user_home: Path) -> None:
    r = run(["stream", "ETH/USD", "--duration", "1.5", "--depth", "2"], user_home, live.url)
    assert r.exit_code == 0, r.output
    assert "ETH/USD" in r.stdout and "bid" in r.stdout


def test_stream_ctrl_c_exits_cleanly(live: LiveDaemon, user_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_")}
    # TTY_COMPATIBLE: rich draws the live view as on a terminal, so it can be read as it goes
    env.update(KMS_HOME=str(user_home), KMS_SERVER=live.url, TTY_COMPATIBLE="1")
    proc = subprocess.Popen([sys.executable, "-m", "krakenstream", "stream", "ETH/USD"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        # started, connected, and a frame with a book drawn
        seen = read_until(proc.stdout, lambda out: b"mid " in out, 30)
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = seen + rest
    assert proc.returncode in (0, 130), err
    assert b"Traceback" not in err and b"Traceback" not in out
    assert b"ETH/USD" in out
