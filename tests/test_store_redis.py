"""What only the Redis history store has: its key layout, its URL handling, a server that dies.

A private ``redis-server`` on a free port stands in for a Redis that goes away and comes back
(the shared one on 6379 must not be stopped).
"""

from __future__ import annotations

import asyncio
import gc
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from conftest import free_port, port_open, skip_or_fail
from krakenstream.config import load_settings
from krakenstream.core import codec
from krakenstream.daemon.wiring import open_store
from krakenstream.errors import BackendUnavailable
from krakenstream.redact import redact_url
from krakenstream.store import RedisHistoryStore
from test_store_support import T0, series


@pytest.mark.slow
async def test_unreachable_redis_is_backend_unavailable_naming_the_url() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = RedisHistoryStore(url, prefix="kms-test:")
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        await store.open()
    assert url in str(info.value)
    assert time.monotonic() - started < 5  # a dead server fails fast, no long retry loop
    # never opened: every call says so instead of crashing on a missing client
    with pytest.raises(BackendUnavailable, match="not open"):
        await store.count("BTC/USD")


@pytest.mark.slow
async def test_the_password_never_appears_in_errors() -> None:
    url = f"redis://kms:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(BackendUnavailable) as info:
        await RedisHistoryStore(url).open()
    assert "s3cret" not in str(info.value)
    assert "kms:***@127.0.0.1" in str(info.value)


def test_redact_url() -> None:
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact_url("redis://:pw@h:1/2") == "redis://:***@h:1/2"
    assert redact_url("rediss://u:pw@h/0") == "rediss://u:***@h/0"


async def test_keys_live_under_the_configured_prefix(
    redis_server_url: str, redis_prefix: str
) -> None:
    settings = load_settings(env={"KMS_STORE_BACKEND": "redis", "KMS_REDIS_URL": redis_server_url,
                                  "KMS_REDIS_PREFIX": redis_prefix,
                                  "KMS_STORE_HISTORY_LIMIT": "25"})
    store = open_store(settings)
    assert isinstance(store, RedisHistoryStore)
    await store.open()
    try:
        assert await store.add(series("BTC/USD", 30) + series("ETH/USD", 2)) == 27
    finally:
        await store.close()
    client = redis.Redis.from_url(redis_server_url)
    try:
        keys = sorted(k.decode() for k in client.scan_iter(match=redis_prefix + "*"))
        assert keys == [f"{redis_prefix}history-pairs", f"{redis_prefix}history:BTC/USD",
                        f"{redis_prefix}history:ETH/USD"]
        assert client.type(f"{redis_prefix}history:BTC/USD") == b"zset"
        assert client.zcard(f"{redis_prefix}history:BTC/USD") == 25  # trimmed on write
        lowest = client.zrange(f"{redis_prefix}history:BTC/USD", 0, 0, withscores=True)
        assert lowest[0][1] == T0 + 5_000
    finally:
        client.close()


async def test_many_pairs_in_several_script_calls_store_as_one(
    redis_server_url: str, redis_prefix: str
) -> None:
    """A batch is stored by one script call per ``pairs_per_call`` pairs: the answer (newly
    stored and kept), the dedupe and the cap are the same whichever way it is cut."""
    batch = [s for i in range(7) for s in series(f"P{i}/USD", 4 + i)]
    # P0's two are stored already; P5's twelve are new, the newest 8 kept
    again = series("P0/USD", 2) + series("P5/USD", 12, start=T0 + 9_000)
    answers = []
    for per_call in (1, 3, 500):
        prefix = f"{redis_prefix}{per_call}:"
        store = RedisHistoryStore(redis_server_url, prefix=prefix, history_limit=8,
                                  pairs_per_call=per_call)
        await store.open()
        try:
            first, second = await store.add(batch), await store.add(again)
            counts = [await store.count(f"P{i}/USD") for i in range(7)]
            kept = [s.ts async for s in store.history("P5/USD", order="asc")]
        finally:
            await store.close()
        answers.append((first, second, counts, kept))
    # 4+5+...+10 = 49 written, the cap (8) keeps 4+5+6+7+8+8+8 = 46
    assert answers[0] == (46, 8, [4, 5, 6, 7, 8, 8, 8], [T0 + i * 1000 for i in range(13, 21)])
    assert answers[1] == answers[0]
    assert answers[2] == answers[0]


async def test_encoded_rows_are_stored_as_their_snapshots_are(
    redis_server_url: str, redis_prefix: str
) -> None:
    """``add_encoded`` (the history writer's path from Kafka: the record's bytes as they
    came) stores what ``add`` stores, byte for byte, with the same answers, dedupe and cap."""
    batch = [s for i in range(7) for s in series(f"P{i}/USD", 4 + i)]
    again = series("P0/USD", 2) + series("P5/USD", 12, start=T0 + 9_000)
    answers, members = [], []
    for way in ("add", "add_encoded"):
        for per_call in (3, 500):
            prefix = f"{redis_prefix}{way}:{per_call}:"
            store = RedisHistoryStore(redis_server_url, prefix=prefix, history_limit=8,
                                      pairs_per_call=per_call)
            await store.open()
            try:
                if way == "add":
                    first, second = await store.add(batch), await store.add(again)
                else:
                    first = await store.add_encoded([codec.Encoded.of(s) for s in batch])
                    second = await store.add_encoded(
                        [codec.Encoded.read(s.pair, codec.encode(s)) for s in again])
                counts = [await store.count(f"P{i}/USD") for i in range(7)]
                kept = [s async for s in store.history("P5/USD", order="asc")]
            finally:
                await store.close()
            answers.append((first, second, counts, kept))
            client = redis.Redis.from_url(redis_server_url)
            try:
                members.append([client.zrange(f"{prefix}history:P{i}/USD", 0, -1,
                                              withscores=True) for i in range(7)])
            finally:
                client.close()
    assert answers[0][:3] == (46, 8, [4, 5, 6, 7, 8, 8, 8])
    assert [s.ts for s in answers[0][3]] == [T0 + i * 1000 for i in range(13, 21)]
    assert all(a == answers[0] for a in answers) and all(m == members[0] for m in members)
    assert await RedisHistoryStore(redis_server_url).add_encoded([]) == 0  # not even opened


def test_pairs_per_call_must_be_positive() -> None:
    with pytest.raises(ValueError, match="pairs_per_call"):
        RedisHistoryStore("redis://127.0.0.1:6379/0", pairs_per_call=0)


class RedisServer:
    """A throwaway redis-server (no persistence) that a test may stop and start."""

    def __init__(self, binary: str, port: int, workdir: Path) -> None:
        self.binary, self.port, self.workdir = binary, port, workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port, 0.2):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not listen on {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, RedisServer]]:
    binary = shutil.which("redis-server")
    if binary is None:
        skip_or_fail("redis-server is not installed")
        raise AssertionError  # unreachable
    server = RedisServer(binary, free_port(), tmp_path)
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0", server
    finally:
        server.stop()


@pytest.mark.slow
async def test_redis_going_away_and_back(private_redis: tuple[str, RedisServer]) -> None:
    url, server = private_redis
    store = RedisHistoryStore(url, prefix="kms:")
    await store.open()
    try:
        assert await store.add(series("BTC/USD", 3)) == 3
        await asyncio.to_thread(server.stop)
        with pytest.raises(BackendUnavailable, match=re.escape(url)):
            await store.add(series("BTC/USD", 1, start=T0 + 60_000))
        with pytest.raises(BackendUnavailable):
            await store.ping()
        with pytest.raises(BackendUnavailable):
            [s async for s in store.history("BTC/USD")]
        await asyncio.to_thread(server.start)
        # the same store reconnects by itself (the server came back empty: no persistence)
        await store.ping()
        assert await store.add(series("BTC/USD", 2)) == 2  # the script is loaded again
        assert await store.count("BTC/USD") == 2
    finally:
        await store.close()


async def test_members_written_before_the_compact_form_are_read(
    redis_server_url: str, redis_prefix: str
) -> None:
    """Before issue 12 a member was the snapshot's JSON, written by the add script as
    ``ZADD key ts json`` and ``SADD <prefix>history-pairs pair``: such a key is read as it is,
    marks included, and new snapshots go in beside it in the compact form."""
    snaps = series("BTC/USD", 8)
    old = [s for s in snaps if s.seq != 4]  # one lost: seq 5 follows a hole
    client = redis.Redis.from_url(redis_server_url)
    try:
        key = f"{redis_prefix}history:BTC/USD"
        client.zadd(key, {s.to_json(): s.ts for s in old})
        client.sadd(f"{redis_prefix}history-pairs", "BTC/USD")
        store = RedisHistoryStore(redis_server_url, prefix=redis_prefix)
        await store.open()
        try:
            got = [s async for s in store.history("BTC/USD", order="asc")]
            assert got == [replace(s, gap_before=s.seq == 5) for s in old]
            assert [j async for j in store.history_json("BTC/USD", order="asc", limit=2)] \
                == [s.to_json() for s in old[:2]]
            assert await store.add([snaps[4]]) == 1  # seq 4 arrives at last
            newer = series("BTC/USD", 10)[8:]
            assert await store.add(newer) == 2
            assert [s async for s in store.history("BTC/USD", order="asc")] == \
                series("BTC/USD", 10)
        finally:
            await store.close()
        members = client.zrange(key, 0, -1)
        assert {m[:1] for m in members} == {b"{", codec.MAGIC}
    finally:
        client.close()


async def test_a_depth_10_snapshot_costs_at_most_400_bytes(
    redis_server_url: str, redis_prefix: str
) -> None:
    """Issue 12's bound, measured as operations.md does: ``MEMORY USAGE key SAMPLES 0`` over
    ``ZCARD`` for a full 10,000-snapshot history (a skiplist-encoded sorted set)."""
    store = RedisHistoryStore(redis_server_url, prefix=redis_prefix)
    await store.open()
    try:
        snaps = [replace(s, origin="ab12cd34") for s in series("BTC/USD", 10_000)]
        for i in range(0, len(snaps), 1_000):
            await store.add(snaps[i : i + 1_000])
        key = store.key("BTC/USD")
    finally:
        await store.close()
    client = redis.Redis.from_url(redis_server_url)
    try:
        assert client.zcard(key) == 10_000
        assert client.object("encoding", key) == b"skiplist"
        used = client.memory_usage(key, samples=0)
    finally:
        client.close()
    assert used / 10_000 <= 400, f"{used / 10_000:.0f} bytes a snapshot"

@pytest.mark.slow
async def test_a_failed_write_of_several_pairs_leaves_no_pipeline_open(
    private_redis: tuple[str, RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    """Pairs beyond one script call go through one pipeline; when Redis is gone the pipeline
    fails before it runs (loading the script), and must still give its connection back: else
    asyncio logs "Unclosed Pipeline client" when it is collected, an ERROR that hides the real
    cause."""
    url, server = private_redis
    store = RedisHistoryStore(url, prefix="kms:", pairs_per_call=1)
    await store.open()
    try:
        assert await store.add(series("BTC/USD", 2) + series("ETH/USD", 2)) == 4
        await asyncio.to_thread(server.stop)
        for _ in range(3):
            with pytest.raises(BackendUnavailable, match="storing snapshots"):
                await store.add(series("BTC/USD", 1, start=T0 + 60_000)
                                + series("ETH/USD", 1, start=T0 + 60_000))
        gc.collect()
        await asyncio.sleep(0)  # the loop's exception handler runs in the loop
    finally:
        await store.close()
    unclosed = [r.getMessage() for r in caplog.records if "Unclosed" in r.getMessage()]
    assert unclosed == []
