"""Every way a snapshot can go missing on its way to history leaves a mark, and nothing else
does (issue 12): dropped on the bus, reordered and redelivered, lost by a broker restart, a
killed and restarted orderbook process, a shard handover; and a run with none of these marks
nothing but each pair's very first snapshot (published with ``gap_before``: nothing came
before it).

``gap_before`` is derived when history is read (``store/base.py``), so the checks read it
back the way users do: the HTTP answers (JSON, NDJSON, CSV, latest, summary) and the CLI.
The store-level rule, both orders, chunk edges and the cap are in the store contract suite.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from cli_support import LiveDaemon
from conftest import Broker
from gateway_support import Stack, eventually, login, settings_for, stack
from krakenstream.bus.base import SnapshotBus
from krakenstream.cli import app
from krakenstream.client import KmsClient
from krakenstream.config import load_settings
from krakenstream.core.snapshot import Snapshot
from krakenstream.daemon.history_writer import HistoryWriter
from krakenstream.daemon.orderbook import OrderbookRole
from krakenstream.daemon.services import build_services
from krakenstream.errors import NotFound
from krakenstream.sim.server import SimServer
from roles_support import StaticFeed
from test_pipeline import PAIRS, pipeline_settings, stored, wait_until

#: restarts of the pipeline and of a daemon process, seconds each
pytestmark = pytest.mark.slow

T0 = 1_764_000_000_000  # epoch ms, a whole second
ETH, BTC = "ETH/USD", "BTC/USD"


class Lossy:
    """A bus in front of a bus: drops the snapshots chosen by (pair, seq), holds back those
    chosen for a late redelivery (:meth:`release`), passes the rest on."""

    def __init__(self, bus: SnapshotBus, drop: set[tuple[str, int]] = frozenset(),  # type: ignore[assignment]
                 hold: set[tuple[str, int]] = frozenset()) -> None:  # type: ignore[assignment]
        self.bus, self.drop, self.hold = bus, set(drop), set(hold)
        self.held: list[Snapshot] = []

    async def publish(self, snap: Snapshot) -> None:
        key = (snap.pair, snap.seq)
        if key in self.drop:
            return
        if key in self.hold:
            self.held.append(snap)
            return
        await self.bus.publish(snap)

    def size_for_pairs(self, pairs: int) -> None:
        self.bus.size_for_pairs(pairs)

    async def release(self) -> None:
        held, self.held = self.held, []
        for snap in held:
            await self.bus.publish(snap)


def role(bus: Any, pairs: list[str], **kw: Any) -> OrderbookRole:
    """An orderbook role (its own origin: one process run) over fixed live books."""
    kraken = load_settings(env={"KMS_KRAKEN_URL": "ws://127.0.0.1:1/v2"}).kraken
    return OrderbookRole(kraken, bus, feed=StaticFeed(pairs), **kw)  # type: ignore[arg-type]


@pytest.fixture
async def gw(kms_home: Path) -> AsyncIterator[Stack]:
    """The analysis role and the gateway over the in-process bus and SQLite; the tests
    publish into its bus themselves."""
    async with stack(settings_for(kms_home), roles=("analysis", "gateway")) as s:
        s.token = await login(s.client)
        yield s


async def stored_count(s: Stack, n: int) -> None:
    store = s.services.store
    assert store is not None

    async def enough() -> bool:
        return sum([await store.count(p) for p in (ETH, BTC)]) >= n

    await eventually(enough)


async def answers(s: Stack, pair: str) -> list[tuple[int, bool]]:
    """(seq, gap_before) oldest first, read back from every HTTP answer (they must agree)."""
    path = "/api/analysis/history/" + pair.replace("/", "-")
    js = (await s.client.get(path, params={"order": "asc"}, headers=s.auth)).json()
    asc = [(d["seq"], d["gap_before"]) for d in js["snapshots"]]
    desc = [(d["seq"], d["gap_before"])
            for d in (await s.client.get(path, headers=s.auth)).json()["snapshots"]]
    assert desc == asc[::-1]
    r = await s.client.get(path, params={"format": "ndjson"}, headers=s.auth)
    nd = [orjson.loads(line) for line in r.text.splitlines()]
    assert [(d["seq"], d["gap_before"]) for d in nd] == desc
    r = await s.client.get(path, params={"format": "csv", "order": "asc"}, headers=s.auth)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(int(d["seq"]), d["gap_before"] == "1") for d in rows] == asc
    r = await s.client.get(path, params={"format": "csv", "order": "asc", "layout": "levels"},
                           headers=s.auth)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(int(d["seq"]), d["gap_before"] == "1") for d in rows] == asc
    latest = (await s.client.get("/api/analysis/latest/" + pair.replace("/", "-"),
                                 headers=s.auth)).json()
    assert (latest["seq"], latest["gap_before"]) == asc[-1]
    summary = (await s.client.get("/api/analysis/summary/" + pair.replace("/", "-"),
                                  headers=s.auth)).json()
    assert summary["gaps"] == sum(gap for _, gap in asc[1:])  # the first row is not a gap
    return asc


def marked(got: list[tuple[int, bool]]) -> set[int]:
    return {seq for seq, gap in got if gap}


async def test_snapshots_dropped_on_the_bus_are_marked(gw: Stack) -> None:
    lossy = Lossy(gw.services.bus, drop={(ETH, 3), (ETH, 4), (BTC, 6), (BTC, 10)})
    ob = role(lossy, [ETH, BTC])
    for k in range(10):
        await ob.publish_tick(T0 + 1000 * k)
    await stored_count(gw, 20 - 4)
    eth, btc = await answers(gw, ETH), await answers(gw, BTC)
    # seq 1 is each pair's first snapshot (published with the flag); then one mark per hole
    assert marked(eth) == {1, 5}
    assert marked(btc) == {1, 7}  # BTC's last snapshot (10) is lost: nothing after it to mark


async def test_a_late_redelivery_clears_the_mark_of_the_hole_it_fills(gw: Stack) -> None:
    lossy = Lossy(gw.services.bus, hold={(ETH, 4), (BTC, 2), (BTC, 3)})
    ob = role(lossy, [ETH, BTC])
    for k in range(6):
        await ob.publish_tick(T0 + 1000 * k)
    await stored_count(gw, 12 - 3)
    assert marked(await answers(gw, ETH)) == {1, 5}
    assert marked(await answers(gw, BTC)) == {1, 4}
    await lossy.release()  # redelivered after newer snapshots (a Kafka retry, a rebalance)
    await stored_count(gw, 12)
    assert marked(await answers(gw, ETH)) == {1}
    assert marked(await answers(gw, BTC)) == {1}


async def test_a_run_without_loss_marks_only_each_pairs_first_snapshot(gw: Stack) -> None:
    ob = role(gw.services.bus, [ETH, BTC])
    for k in range(12):
        await ob.publish_tick(T0 + 1000 * k)
    await stored_count(gw, 24)
    assert marked(await answers(gw, ETH)) == {1}
    assert marked(await answers(gw, BTC)) == {1}


async def test_a_restarted_orderbook_process_is_marked_by_its_new_origin(gw: Stack) -> None:
    """The first run's last snapshot dies with it; the second run's first snapshot (which
    carries the flag) is lost too: its second follows with seq 2 after the first run's
    seq 3 and no flag, and only the changed origin and seq tell the reader."""
    first = role(Lossy(gw.services.bus, drop={(ETH, 4)}), [ETH])
    for k in range(4):
        await first.publish_tick(T0 + 1000 * k)
    second = role(Lossy(gw.services.bus, drop={(ETH, 1)}), [ETH])
    assert second.origin != first.origin
    for k in range(5, 9):
        await second.publish_tick(T0 + 1000 * k)
    await stored_count(gw, 3 + 3)
    assert await answers(gw, ETH) == [(1, True), (2, False), (3, False),
                                      (2, True), (3, False), (4, False)]
    rows = (await gw.client.get("/api/analysis/history/ETH-USD", params={"order": "asc"},
                                headers=gw.auth)).json()["snapshots"]
    assert [r["gap_before"] for r in rows] == [True, False, False, True, False, False]
    assert [r["origin"] for r in rows] == [first.origin] * 3 + [second.origin] * 3


async def test_a_shard_handover_is_marked_once(gw: Stack) -> None:
    """A pair moves from one orderbook process to another (``kraken.shard`` changed): they
    overlap by a tick, the store keeps one snapshot per second, and the history says where
    the publisher changed."""
    old, new = role(gw.services.bus, [ETH, BTC]), role(gw.services.bus, [ETH])
    for k in range(5):
        await old.publish_tick(T0 + 1000 * k)
    await stored_count(gw, 10)
    old.feed.books.pop(ETH)  # type: ignore[attr-defined]
    for k in range(4, 9):  # tick 4 is published by both: the first stored wins
        await new.publish_tick(T0 + 1000 * k)
        if k < 8:
            await old.publish_tick(T0 + 1000 * k + 1000)
    await stored_count(gw, 9 + 9)
    rows = (await gw.client.get("/api/analysis/history/ETH-USD", params={"order": "asc"},
                                headers=gw.auth)).json()["snapshots"]
    origins = [r["origin"] for r in rows]
    assert origins == [old.origin] * 5 + [new.origin] * 4
    assert [r["gap_before"] for r in rows] == [True] + [False] * 4 + [True] + [False] * 3
    assert marked(await answers(gw, BTC)) == {1}  # BTC stayed with the old process


# -- a broker that loses what it had acknowledged ----------------------------------------------


def holes_and_marks(history: dict[tuple[str, int], Snapshot], pair: str) -> tuple[
        list[int], list[int]]:
    """For one pair, oldest first: the seqs that follow a hole (the stored predecessor is not
    seq - 1 of the same origin) and the seqs marked gap_before, first row excluded."""
    snaps = sorted((s for (p, _), s in history.items() if p == pair), key=lambda s: s.ts)
    holes = [b.seq for a, b in zip(snaps, snaps[1:], strict=False)
             if b.seq != a.seq + 1 or b.origin != a.origin]
    marks = [s.seq for s in snaps[1:] if s.gap_before]
    return holes, marks


@pytest.mark.integration
async def test_snapshots_a_restarted_broker_lost_are_marked(
    kms_home: Path, kafka_broker: Broker, redis_prefix: str, redis_server_url: str
) -> None:
    """tansu keeps nothing across a restart: what it had acknowledged but the analysis role
    had not yet read is gone. Every such hole is marked, and nothing else."""
    async with SimServer(pairs=PAIRS, seed=14, rate=20) as sim:
        settings = pipeline_settings(
            kms_home, sim.url,
            KMS_BUS_BACKEND="kafka", KMS_KAFKA_BOOTSTRAP=kafka_broker.bootstrap,
            KMS_KAFKA_SESSION_TIMEOUT_MS="6000", KMS_KAFKA_GROUP="kms-gaps",
            KMS_STORE_BACKEND="redis", KMS_REDIS_URL=redis_server_url,
            KMS_REDIS_PREFIX=redis_prefix,
        )
        services = await build_services(settings, roles=["orderbook", "analysis"])
        try:
            ob, bus, store = services.orderbook, services.bus, services.store
            assert ob is not None and services.history_writer is not None and store is not None

            async def some_stored() -> bool:
                return len(await stored(services)) >= 2 * len(PAIRS)

            await wait_until(some_stored, 30, "the first snapshots to be stored")
            await services.history_writer.stop(drain=False)  # the reader falls behind...
            acked = bus.stats().published

            async def acknowledged_unread() -> bool:  # ...while the broker acknowledges more
                return bus.stats().published >= acked + 2 * len(PAIRS)

            await wait_until(acknowledged_unread, 20, "snapshots acknowledged but unread")
            kafka_broker.stop(grace=0.2)  # and loses them
            kafka_broker.start()
            services.history_writer = HistoryWriter(bus, store, group="kms-gaps",
                                               metrics=services.metrics)
            await services.history_writer.start()
            restarted_at = bus.stats().published

            async def flowing_again() -> bool:
                return bus.stats().published >= restarted_at + 2 * len(PAIRS)

            await wait_until(flowing_again, 40, "snapshots to flow after the restart")
            await ob.stop()
            last = {pair: ob.last_snapshot(pair) for pair in PAIRS}

            async def settled() -> bool:  # every pair's last snapshot is stored
                h = await stored(services)
                return all(s is not None and (p, s.ts) in h for p, s in last.items())

            await wait_until(settled, 40, "the last snapshots to be stored")
            history = await stored(services)
            lost = 0
            for pair in PAIRS:
                holes, marks = holes_and_marks(history, pair)
                assert marks == holes, pair  # every hole marked, no mark without a hole
                lost += len(holes)
            assert lost > 0, "the restart lost nothing: the test did not test"
        finally:
            await services.close()


# -- a real daemon process, killed and started again ------------------------------------------


runner = CliRunner()


def test_a_killed_and_restarted_daemon_shows_the_restart_everywhere(tmp_path: Path) -> None:
    home = tmp_path / "daemon"
    home.mkdir()
    (home / "config.toml").write_text("[kraken]\nsnapshot_interval = 0.25\n")
    live = LiveDaemon(home, pairs=(ETH,))
    try:
        live.start()
        token = live.login("gaps@example.com")

        def count() -> int:
            with KmsClient(live.url, token) as client:
                try:
                    return sum(1 for _ in client.history(ETH, limit=10_000))
                except NotFound:  # nothing stored yet
                    return 0

        def wait_count(n: int) -> None:
            deadline = time.monotonic() + 30
            while count() < n:
                assert time.monotonic() < deadline, f"fewer than {n} snapshots stored"
                time.sleep(0.1)

        wait_count(4)
        assert live.daemon is not None
        before = count()
        live.daemon.proc.kill()  # SIGKILL: no drain, whatever was in flight is gone
        live.daemon.proc.wait(10)
        live.daemon = None
        live.start_daemon()
        wait_count(before + 4)

        with KmsClient(live.url, token) as client:
            rows = list(client.history(ETH, order="asc", limit=10_000))
        origins = [r["origin"] for r in rows]
        assert len(set(origins)) == 2
        restart = origins.index(origins[-1])
        assert [r["gap_before"] for r in rows] == \
            [True] + [False] * (restart - 1) + [True] + [False] * (len(rows) - restart - 1)

        env = {"KMS_HOME": str(tmp_path / "client"), "KMS_SERVER": live.url}
        r = runner.invoke(app, ["login", "--email", "gaps@example.com", "--password-stdin"],
                          input="correct horse battery\n", env=env)
        assert r.exit_code == 0, r.output
        r = runner.invoke(app, ["history", ETH, "--json", "--order", "asc"], env=env)
        assert r.exit_code == 0, r.output
        shown = orjson.loads(r.stdout)
        shown = shown["snapshots"] if isinstance(shown, dict) else shown
        assert [s["gap_before"] for s in shown][: len(rows)] == [r["gap_before"] for r in rows]
        r = runner.invoke(app, ["analyze", ETH, "--json"], env=env)
        assert r.exit_code == 0, r.output
        assert orjson.loads(r.stdout)["gaps"] == 1
    finally:
        live.stop()
