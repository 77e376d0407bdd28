"""A client we did not write, against the simulator: python-kraken-sdk's ``SpotOrderBookClient``.

That client keeps its books its own way (it trims to the depth after every level, and formats
numbers with ``str.format``), reports 0 checksum failures on Kraken's real recording, and
resubscribes a pair whose checksum fails. Here it connects to ``kms sim`` over loopback: its
websocket URL is pointed at the simulator, and its REST precision lookup (``Market``) is
answered from the simulator's instrument channel, so nothing leaves 127.0.0.1. It must see
no checksum failure, and once the simulator is paused its books must equal the simulator's.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from kraken.spot import SpotOrderBookClient
from kraken.spot import orderbook as sdk_orderbook
from websockets.asyncio.client import connect

from cli_support import first_line
from conftest import free_port
from krakenstream.core.session import BookSession
from krakenstream.feed.recorder import record
from krakenstream.sim.server import SimServer

pytestmark = pytest.mark.slow

DEPTH = 10
PAIRS = ["BTC/USD", "ETH/USD", "DOGE/USD", "SOL/USD"]
SEEDS = (1, 2, 3)
#: about 20 s at the simulator's default rate of 10 updates a second per pair
UPDATES_PER_PAIR = 200
KMS = str(Path(sys.executable).parent / "kms")

Levels = list[tuple[int, int]]


class Precisions:
    """Stands in for the SDK's REST ``Market``: the asset-pair lookup it makes for each new
    book, answered from what the simulator's instrument channel lists (no HTTP at all)."""

    def __init__(self, precisions: dict[str, tuple[int, int]]) -> None:
        self.precisions = precisions
        self.asked: list[str] = []

    def get_asset_pairs(self, pair: str, **_: Any) -> dict[str, dict[str, int]]:
        self.asked.append(pair)
        price, qty = self.precisions[pair]
        return {pair: {"pair_decimals": price, "lot_decimals": qty}}


class SdkBooks(SpotOrderBookClient):  # type: ignore[misc]
    """The SDK's order-book client, aimed at a simulator; counts what it reports."""

    #: its REST base: a closed loopback port (the lookups it needs go to :class:`Precisions`)
    URL = "http://127.0.0.1:9"

    def __init__(self, sim_url: str, precisions: dict[str, tuple[int, int]]) -> None:
        # the SDK appends /v2 itself; set before its __init__, which keeps what it finds
        self.WS_URL = sim_url.removesuffix("/v2")
        super().__init__(depth=DEPTH)
        self._SpotOrderBookClient__market = Precisions(precisions)
        self.updates: Counter[str] = Counter()
        self.mismatches: Counter[str] = Counter()
        self.heartbeats = 0
        self.errors: list[Any] = []

    async def on_message(self, message: dict[str, Any] | list[Any]) -> None:
        await super().on_message(message)
        if isinstance(message, dict):
            if message.get("channel") == "heartbeat":
                self.heartbeats += 1
            elif message.get("success") is False or "python-kraken-sdk" in message:
                self.errors.append(message)

    async def on_book_update(self, pair: str, message: dict[str, Any]) -> None:
        # the SDK's own checksum failure report: it then resubscribes the pair
        if "error" in message:
            self.mismatches[pair] += 1
        else:
            self.updates[pair] += 1

    def scaled(self, pair: str, precisions: tuple[int, int]) -> tuple[Levels, Levels]:
        """The SDK's book of ``pair`` as scaled integers, best first: (bids, asks)."""
        book = self.get(pair=pair)
        assert book is not None, f"the SDK holds no book for {pair}"
        pp, qp = precisions

        def side(levels: dict[str, tuple[str, Any]]) -> Levels:
            return [(int(Decimal(p).scaleb(pp)), int(Decimal(q).scaleb(qp)))
                    for p, (q, _) in levels.items()]

        return side(book["bid"]), side(book["ask"])


async def instrument_precisions(url: str) -> dict[str, tuple[int, int]]:
    """Every pair's (price, qty) precision, from the simulator's instrument channel."""
    async with connect(url) as ws:
        await ws.send(orjson.dumps({"method": "subscribe",
                                    "params": {"channel": "instrument"}}).decode())
        async with asyncio.timeout(10):
            while True:
                frame = orjson.loads(await ws.recv())
                if frame.get("channel") == "instrument":
                    return {p["symbol"]: (p["price_precision"], p["qty_precision"])
                            for p in frame["data"]["pairs"]}


async def wait_for(pred: Any, within: float) -> bool:
    """Poll ``pred`` until it holds (True) or ``within`` seconds pass (False)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not pred():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


class Run:
    """One seed's run: the client, and once paused its books and the simulator's (None when
    the client had not caught up with the simulator within the deadline)."""

    def __init__(self, seed: int, client: SdkBooks) -> None:
        self.seed = seed
        self.client = client
        self.theirs: dict[str, tuple[Levels, Levels]] | None = None
        self.ours: dict[str, tuple[Levels, Levels]] = {}


async def sdk_on_sim(seed: int) -> Run:
    """Run the SDK against a simulator with ``seed`` for about ``UPDATES_PER_PAIR`` updates
    of each pair, pause the simulator, and read both sides' books."""
    async with SimServer(seed=seed) as sim:
        precisions = await instrument_precisions(sim.url)
        run = Run(seed, SdkBooks(sim.url, precisions))
        client = run.client
        await client.start()
        try:
            await client.add_book(pairs=PAIRS)
            # run on the simulator's output, whatever the client does with it (a client
            # that resubscribes after a checksum failure reads nothing for 3 s)
            assert await wait_for(
                lambda: sim.stats.book_frames > UPDATES_PER_PAIR * len(PAIRS), within=120)
            await sim.pause()
            run.ours = {p: sim.book_view(p, DEPTH) for p in PAIRS}
            # everything sent before the pause precedes this heartbeat on the socket
            beats = client.heartbeats
            if await wait_for(lambda: client.heartbeats > beats, within=10):
                run.theirs = {p: client.scaled(p, precisions[p]) for p in PAIRS}
        finally:
            await client.close()
    return run


async def test_the_sdk_keeps_exact_books_on_the_simulator() -> None:
    """Three seeds at once, four pairs each at depth 10, about 20 s."""
    runs = await asyncio.gather(*(sdk_on_sim(seed) for seed in SEEDS))
    report = {run.seed: dict(run.client.mismatches) for run in runs}
    assert all(not m for m in report.values()), f"SDK checksum failures by seed: {report}"
    for run in runs:
        client = run.client
        assert not client.errors, (run.seed, client.errors)
        assert sorted(set(client._SpotOrderBookClient__market.asked)) == sorted(PAIRS)
        assert run.theirs is not None, f"seed {run.seed}: the SDK never caught up"
        for pair in PAIRS:
            assert client.updates[pair] > UPDATES_PER_PAIR // 2
            assert run.theirs[pair] == run.ours[pair], (run.seed, pair)
            assert len(run.ours[pair][0]) == len(run.ours[pair][1]) == DEPTH


# -- kms sim --replay of Kraken's own recording -----------------------------------------------


@pytest.fixture
def replay_process(shared_recording: Path) -> Iterator[str]:
    """``kms sim --replay`` of the real recording, as fast as the client reads."""
    port = free_port()
    proc = subprocess.Popen(
        [KMS, "sim", "--port", str(port), "--replay", str(shared_recording), "--speed", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        yield first_line(proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def recorded_end(shared_recording: Path) -> tuple[int, tuple[Levels, Levels]]:
    """How many book frames the recording holds, and its last book (by our core)."""
    lines = shared_recording.read_bytes().splitlines()
    session = BookSession()
    for line in lines:
        session.receive(line)
    final = session.books["BTC/USD"]
    return sum(1 for ln in lines if ln.startswith(b'{"channel":"book"')), (
        final.bids(), final.asks())


async def test_the_sdk_on_a_replay_of_kraken_s_recording(
    replay_process: str, recorded_end: tuple[int, tuple[Levels, Levels]]
) -> None:
    book_frames, final = recorded_end
    precisions = await instrument_precisions(replay_process)
    assert precisions == {"BTC/USD": (1, 8)}
    client = SdkBooks(replay_process, precisions)
    await client.start()
    try:
        await client.add_book(pairs=["BTC/USD"])
        assert await wait_for(lambda: client.updates["BTC/USD"]
                              + sum(client.mismatches.values()) >= book_frames, within=60)
        theirs = client.scaled("BTC/USD", precisions["BTC/USD"])
    finally:
        await client.close()
    assert not client.mismatches and not client.errors
    assert client.updates["BTC/USD"] == book_frames == 510
    assert theirs == final


# -- a recording of the simulator, read back by kms replay --check and by the SDK -------------


class OfflineSdkBooks(SdkBooks):
    """The SDK's book logic fed from a file: no connection; a resubscribe is only noted."""

    async def remove_book(self, pairs: list[str]) -> None:
        return None

    async def add_book(self, pairs: list[str]) -> None:
        return None


async def test_a_recording_of_the_simulator_verifies_for_kms_replay_and_the_sdk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "sim.jsonl"
    async with SimServer(seed=4, rate=40.0) as sim:
        precisions = await instrument_precisions(sim.url)
        stop = asyncio.Event()
        task = asyncio.create_task(record(PAIRS, out, url=sim.url, depth=DEPTH, stop=stop))
        assert await wait_for(lambda: sim.stats.book_frames > 150 * len(PAIRS), within=60)
        stop.set()
        summary = await task
    assert all(p.state.value == "live" for p in summary.pairs.values())

    proc = await asyncio.create_subprocess_exec(
        KMS, "replay", str(out), "--check", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    report = orjson.loads(stdout)
    assert sorted(report) == sorted(PAIRS)
    for pair in PAIRS:
        assert report[pair]["mismatches"] == 0, (pair, report[pair])
        assert report[pair]["verified"] == report[pair]["frames"] > 100

    # the SDK resubscribes after 3 s on a mismatch; offline there is nothing to wait for
    async def no_sleep(_seconds: float) -> None:
        return None

    monkeypatch.setattr(sdk_orderbook, "asyncio_sleep", no_sleep)
    client = OfflineSdkBooks("ws://127.0.0.1:9/v2", precisions)
    try:
        for line in (await asyncio.to_thread(out.read_bytes)).splitlines():
            await client.on_message(orjson.loads(line))
    finally:
        await client.close()  # never started: this only closes its HTTP session
    assert not client.mismatches, f"SDK checksum failures: {dict(client.mismatches)}"
    assert sum(client.updates.values()) == sum(report[p]["frames"] for p in PAIRS)
