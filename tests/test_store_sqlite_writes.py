"""The SQLite store's batch writes (``store/sqlite_writes.py``): the fast way (a batch the
writer knows is news) and the checked way must leave the same file and answer the same,
whatever comes: redeliveries, late rows, several rows of a pair in a batch, the cap, a move
into ``settled``, another connection writing the same file, a failed transaction."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krakenstream.store import sqlite_sql as sql
from krakenstream.store.sqlite_writes import BatchWrites, statement

Row = tuple[str, int, bytes]
PAIRS = ("AAA/USD", "BBB/USD", "CCC/EUR")


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    for ddl in (*sql.SCHEMA, *sql.SCRATCH):
        conn.execute(ddl)
    return conn


@pytest.fixture
def conns(tmp_path: Path) -> Iterator[tuple[sqlite3.Connection, sqlite3.Connection]]:
    a, b = connect(tmp_path / "h.sqlite3"), connect(tmp_path / "h.sqlite3")
    yield a, b
    a.close()
    b.close()


def on_disk(conn: sqlite3.Connection) -> tuple[dict[str, dict[int, bytes]], dict[str, int]]:
    rows: dict[str, dict[int, bytes]] = {}
    for pair, ts, data in conn.execute("SELECT pair, ts, data FROM snapshots"):
        assert ts not in rows.setdefault(pair, {}), "a (pair, ts) in both tables"
        rows[pair][ts] = bytes(data)
    counts = dict(conn.execute("SELECT pair, n FROM pair_counts WHERE n > 0").fetchall())
    return rows, counts


class Model:
    """What the store must hold (caps under 100: no slack, exactly the newest ``cap`` rows
    of each pair on disk) and what ``add`` must answer, the naive way."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.rows: dict[str, dict[int, bytes]] = {}

    def add(self, batch: list[Row]) -> int:
        new: list[tuple[str, int]] = []
        for pair, ts, data in batch:
            held = self.rows.setdefault(pair, {})
            if ts not in held:  # the first of a (pair, ts) wins, a stored one first of all
                held[ts] = data
                new.append((pair, ts))
        for held in self.rows.values():
            for ts in sorted(held)[:-self.cap]:
                del held[ts]
        return sum(1 for pair, ts in new if ts in self.rows[pair])


@st.composite
def actions(draw: st.DrawFn) -> list[tuple[str, int, list[Row]]]:
    """Steps of (what, which writer, batch): mostly batches a tick newer than the last
    (the fast way's case), with late rows, redeliveries and repeats of a pair mixed in."""
    out: list[tuple[str, int, list[Row]]] = []
    clock = 0
    for _ in range(draw(st.integers(1, 12))):
        what = draw(st.sampled_from(["add", "add", "add", "settle"]))
        writer = draw(st.sampled_from([0, 0, 0, 1]))
        batch: list[Row] = []
        clock += 3
        for _ in range(draw(st.integers(0, 8))):
            pair = draw(st.sampled_from(PAIRS))
            ts = clock + draw(st.sampled_from([0, 1, 2, 0, 1, 2, -3, -7]))
            batch.append((pair, ts, f"{pair}@{ts}#{len(out)}".encode()))
        out.append((what, writer, batch))
    return out


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=actions(), cap=st.sampled_from([1, 2, 3, 5, 99]))
def test_fast_and_checked_writes_keep_what_the_naive_model_keeps(
        tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int, list[Row]]],
        cap: int) -> None:
    path = tmp_path_factory.mktemp("w") / "h.sqlite3"
    conns = connect(path), connect(path)
    writers = BatchWrites(cap), BatchWrites(cap)
    model = Model(cap)
    try:
        for what, i, batch in steps:
            conn = conns[i]
            if what == "settle":
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(sql.SETTLE)
                conn.execute(sql.CLEAR_RECENT)
                conn.execute("COMMIT")
                continue
            kept, _ = writers[i].add(conn, batch)
            assert kept == model.add(batch)
            rows, counts = on_disk(conn)
            assert rows == {p: held for p, held in model.rows.items() if held}
            assert counts == {p: len(held) for p, held in rows.items()}
    finally:
        for conn in conns:
            conn.close()


def ticks(start: int, n: int, pairs: tuple[str, ...] = PAIRS) -> Iterator[list[Row]]:
    for k in range(start, start + n):
        yield [(p, 1_000 * k, f"{p}@{k}".encode()) for p in pairs]


def test_a_writer_appending_tick_after_tick_takes_the_fast_way(
        conns: tuple[sqlite3.Connection, sqlite3.Connection]) -> None:
    conn, _ = conns
    writes = BatchWrites(10)
    for k, batch in enumerate(ticks(1, 30), 1):
        # (rows added to recent: none net once each new row pushes an old one out)
        assert writes.add(conn, batch) == (3, 3 if k <= 10 else 0)
    # the first batch is checked (the pairs were not known); every later one is news
    assert (writes.checked, writes.appended) == (1, 29)
    rows, counts = on_disk(conn)
    assert counts == dict.fromkeys(PAIRS, 10)  # trimmed to the cap the fast way too
    assert all(sorted(held) == [1_000 * k for k in range(21, 31)] for held in rows.values())
    # a redelivery and a late row are not news: checked, and the redelivery not stored again
    assert writes.add(conn, next(ticks(30, 1))) == (0, 0)
    # (kept: five rows newer than it, under the cap; the oldest row goes for it)
    assert writes.add(conn, [(PAIRS[0], 25_500, b"late")]) == (1, 0)
    assert writes.checked == 3
    rows, counts = on_disk(conn)
    assert counts[PAIRS[0]] == 10 and min(rows[PAIRS[0]]) == 22_000


def test_another_connections_commit_sends_the_next_batch_the_checked_way(
        conns: tuple[sqlite3.Connection, sqlite3.Connection]) -> None:
    """Another process writing the same file: what the writer knew is stale, so it checks;
    the row the other wrote is not stored twice and the counts stay exact."""
    a, b = conns
    mine, theirs = BatchWrites(100), BatchWrites(100)
    for batch in ticks(1, 3):
        mine.add(a, batch)
    assert (mine.checked, mine.appended) == (1, 2)
    theirs.add(b, next(ticks(4, 1)))  # tick 4, written by the other
    both = [row for batch in ticks(4, 2) for row in batch]  # tick 4 (theirs already), 5
    assert mine.add(a, both) == (3, 3)
    assert mine.checked == 2
    rows, counts = on_disk(a)
    assert counts == dict.fromkeys(PAIRS, 5)
    assert all(held[4_000] == f"{p}@4".encode() for p, held in rows.items())
    mine.add(a, next(ticks(6, 1)))
    assert mine.appended == 3  # and fast again once checked


def test_a_failed_write_forgets_what_the_writer_knew(
        conns: tuple[sqlite3.Connection, sqlite3.Connection]) -> None:
    conn, _ = conns
    writes = BatchWrites(1_000)
    for batch in ticks(1, 2):
        writes.add(conn, batch)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    big = [(PAIRS[0], 10_000 + i, bytes(2_000)) for i in range(200)]
    with pytest.raises(sqlite3.OperationalError, match="full"):
        writes.add(conn, big)
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert on_disk(conn)[1] == dict.fromkeys(PAIRS, 2)  # nothing half-written
    writes.add(conn, next(ticks(3, 1)))
    assert (writes.checked, writes.appended) == (2, 1)  # checked again after the failure
    assert on_disk(conn)[1] == dict.fromkeys(PAIRS, 3)


def test_whatever_the_batch_sizes_a_few_statements_are_prepared(
        conns: tuple[sqlite3.Connection, sqlite3.Connection]) -> None:
    """A chunk is padded up to one of a few sizes (its last row repeated, ignored): one
    prepared statement of 2,000 rows holds ~1.2 MB, and one per batch size seen filled the
    connection's cache with tens of MB."""
    conn, _ = conns
    writes = BatchWrites(5)
    statement.cache_clear()
    pairs = tuple(f"P{i:04d}/USD" for i in range(2_100))
    k = 1
    writes.add(conn, [(p, 1_000, b"first") for p in pairs])  # every pair known from here
    for n in (*range(1, 40), 127, 128, 129, 500, 999, 2_047, 2_048, 2_049, 2_100):
        k += 1
        batch = [(p, 1_000 * k, f"{p}@{k}".encode()) for p in pairs[:n]]
        assert writes.add(conn, batch)[0] == n
        late = [(p, 1_000 * k - 500, b"late") for p in pairs[:n]]  # checked, and trimmed
        writes.add(conn, late)
    assert writes.appended > 20 and writes.checked > 40
    rows, counts = on_disk(conn)
    assert counts[pairs[0]] == 5 and len(rows) == len(pairs)
    assert all(len(held) == counts[p] for p, held in rows.items())
    assert rows[pairs[2_099]] == {1_000: b"first", 1_000 * k: f"{pairs[2_099]}@{k}".encode(),
                                  1_000 * k - 500: b"late"}
    # APPEND, SET_COUNTS, FILL and FLOOR, each in at most len(STATEMENT_ROWS) sizes
    assert statement.cache_info().currsize <= 4 * len(sql.STATEMENT_ROWS)


def test_try_append_takes_only_news_and_never_waits_for_the_write_lock(
        conns: tuple[sqlite3.Connection, sqlite3.Connection]) -> None:
    """The event loop's way (``try_append``): the fast way or nothing, no transaction left
    open, nothing learnt lost; another connection's write lock sends the batch to ``add``
    at once instead of waiting for it, and the connection's busy timeout is put back."""
    conn, other = conns
    writes = BatchWrites(100)
    tick = ticks(1, 10)
    first = next(tick)
    assert writes.try_append(conn, first, 5_000) is None  # nothing learnt yet
    assert not conn.in_transaction and on_disk(conn) == ({}, {})
    writes.add(conn, first)  # checked: the pairs are learnt
    second = next(tick)
    assert writes.try_append(conn, second, 5_000) == (3, 3)
    assert writes.try_append(conn, second, 5_000) is None  # a redelivery is not news
    assert not conn.in_transaction and on_disk(conn)[1] == dict.fromkeys(PAIRS, 2)
    assert (writes.checked, writes.appended) == (1, 1)
    third = next(tick)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        started = time.monotonic()
        assert writes.try_append(conn, third, 5_000) is None
        assert time.monotonic() - started < 2.5, "waited for the lock"
    finally:
        other.execute("ROLLBACK")
    assert not conn.in_transaction
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (5_000,)
    assert writes.try_append(conn, third, 5_000) == (3, 3)  # what it knew still holds
    BatchWrites(100).add(other, next(tick))  # another connection's commit
    fifth = next(tick)
    assert writes.try_append(conn, fifth, 5_000) is None  # not news as far as it knows
    assert writes.add(conn, fifth)[0] == 3  # checked
    assert on_disk(conn)[1] == dict.fromkeys(PAIRS, 5)
