"""Simulator benchmark: what ``kms sim`` delivers and what it costs, to a client that only counts.

The simulator runs as its own process (``kms sim --synthetic N --rate R --seed 1``). This
process is the client: it opens connections of ``--per-connection`` pairs each (200, the feed
pool's default), subscribes at ``--depth`` every online pair the simulator lists (from its
``instrument`` snapshot: what a daemon tracking ``*`` subscribes) and counts the book updates
it receives. It is as cheap as a client can be: a raw asyncio protocol that reads WebSocket
frame headers (server frames are never masked) and a frame's first bytes, no decoding, no
checksum; one update in ``SAMPLE`` has its timestamp read, to see how late frames arrive.

Once every pair's snapshot has come, after ``--warmup`` seconds, over ``--seconds``:

* update frames/s received, against those asked (online pairs x rate);
* the simulator's CPU (user + system of its process, from ``/proc/<pid>/stat``) in cores and
  per frame, and its resident memory (``/proc/<pid>/status``) at the end;
* how late frames arrive (their ``timestamp`` to their arrival, p50 / p99 of the samples): a
  simulator that falls behind shows it here first;
* how many times the simulator said its market loop fell behind (its log), this client's own
  CPU in cores, and the machine's load average (other work competing for the cores).

No figure is printed (exit status 1, and why) when the client may be the bottleneck: when it
used more than ``CLIENT_LIMIT`` of a core, frames/s would say what it could read, not what the
simulator could send.

Run: ``.venv/bin/python bench/sim.py [--pairs 3000] [--rate 3] [--seconds 30] [--depth 10]
[--per-connection 200] [--json]``; ``--url ws://127.0.0.1:PORT/v2 --pid PID`` measures a
simulator already running (to profile it meanwhile). Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime

import orjson

from procs import proc_cpu, proc_rss_mb, start_sim

#: the client's CPU, in cores, above which it may be what limits frames/s
CLIENT_LIMIT = 0.8
#: one update frame in this many has its timestamp read
SAMPLE = 97
_UPDATE = b'{"channel":"book","type":"update"'


@dataclass(frozen=True)
class Result:
    pairs: int
    rate: float
    depth: int
    connections: int
    seconds: float
    frames: int
    frames_per_s: float
    asked_per_s: float
    sim_cores: float
    sim_us_per_frame: float
    sim_rss_mb: float
    late_p50_ms: float
    late_p99_ms: float
    client_cores: float
    #: the machine's load average over the last minute, at the end (other work on the cores)
    load_1min: float
    #: None when the simulator was already running (its log is not ours to read)
    sim_behind_warnings: int | None


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def masked(first: int, payload: bytes) -> bytes:
    """A client frame (clients must mask; a zero mask keeps the payload as is); ``first``
    is its first byte (0x81: a text frame, 0x8A: a pong)."""
    n = len(payload)
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n < 65536:
        head = bytes((first, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


class Counter(asyncio.Protocol):
    """One WebSocket connection that counts book updates; keeps the other frames whole
    until ``keep`` frames were kept (acks, the instrument snapshot)."""

    def __init__(self, host: str, port: int) -> None:
        self.handshake = f"GET /v2 HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n" \
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " \
            f"{base64.b64encode(os.urandom(16)).decode()}\r\n\r\n"
        self.buf = bytearray()
        self.upgraded = asyncio.get_running_loop().create_future()
        self.kept: asyncio.Queue[bytes] = asyncio.Queue()
        self.updates = 0
        self.bytes = 0
        self.lateness: list[float] = []
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.handshake.encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError("closed during the handshake"))

    def send(self, obj: object) -> None:
        self.send_raw(0x81, orjson.dumps(obj))

    def send_raw(self, first: int, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(masked(first, payload))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(ConnectionError(bytes(buf[:80]).decode()))
                return
            del buf[:end + 4]
            self.upgraded.set_result(None)
        pos, n = 0, len(buf)
        while n - pos >= 2:
            size = buf[pos + 1] & 0x7F
            head = 2
            if size == 126:
                if n - pos < 4:
                    break
                size, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif size == 127:
                if n - pos < 10:
                    break
                size, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            start = pos + head
            if n - start < size:
                break
            if buf.startswith(_UPDATE, start):
                self.updates += 1
                if self.updates % SAMPLE == 0:
                    self.sample(buf[start:start + size])
            elif buf[pos] & 0x0F == 0x9:  # a ping (websockets pings every 20 s): pong
                self.send_raw(0x8A, bytes(buf[start:start + size]))
            else:
                self.kept.put_nowait(bytes(buf[start:start + size]))
            pos = start + size
        self.bytes += pos
        del buf[:pos]

    def sample(self, frame: bytearray) -> None:
        at = frame.rfind(b'"timestamp":"')
        if at >= 0:
            text = bytes(frame[at + 13:at + 40]).decode().rstrip('"}]')
            sent = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
            self.lateness.append(time.time() - sent)


async def open_counter(host: str, port: int) -> Counter:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: Counter(host, port), host, port)
    await asyncio.wait_for(proto.upgraded, 10)
    return proto


async def next_kept(conn: Counter, prefix: bytes, within: float = 30.0) -> bytes:
    async with asyncio.timeout(within):
        while True:
            frame = await conn.kept.get()
            if frame.startswith(prefix):
                return frame


async def listing(host: str, port: int) -> list[str]:
    conn = await open_counter(host, port)
    conn.send({"method": "subscribe", "params": {"channel": "instrument"}})
    frame = await next_kept(conn, b'{"channel":"instrument","type":"snapshot"')
    assert conn.transport is not None
    conn.transport.close()
    pairs = orjson.loads(frame)["data"]["pairs"]
    return [p["symbol"] for p in pairs if p["status"] == "online"]


async def subscribe_all(host: str, port: int, symbols: list[str], per: int, depth: int,
                        ) -> list[Counter]:
    conns = []
    for i in range(0, len(symbols), per):
        conn = await open_counter(host, port)
        part = symbols[i:i + per]
        conn.send({"method": "subscribe", "params": {
            "channel": "book", "symbol": part, "depth": depth}})
        conns.append(conn)
    for conn, i in zip(conns, range(0, len(symbols), per), strict=True):
        # every pair's ack, then its snapshot, has come once the last pair's snapshot has
        last = symbols[min(i + per, len(symbols)) - 1]
        await next_kept(conn, b'{"channel":"book","type":"snapshot","data":[{"symbol":"'
                        + last.encode() + b'"', within=120)
    return conns


async def measure(host: str, port: int, pid: int, args: argparse.Namespace) -> Result:
    symbols = await listing(host, port)
    conns = await subscribe_all(host, port, symbols, args.per_connection, args.depth)
    await asyncio.sleep(args.warmup)
    for c in conns:
        c.lateness.clear()
    frames0 = sum(c.updates for c in conns)
    sim0, me0, t0 = proc_cpu(pid), self_cpu(), time.monotonic()
    await asyncio.sleep(args.seconds)
    sim1, me1, t1 = proc_cpu(pid), self_cpu(), time.monotonic()
    frames = sum(c.updates for c in conns) - frames0
    rss = proc_rss_mb(pid)
    if any(c.closed.is_set() for c in conns):
        raise SystemExit("the simulator closed a connection during the run")
    for c in conns:
        assert c.transport is not None
        c.transport.close()
    late = sorted(x for c in conns for x in c.lateness)
    wall = t1 - t0
    return Result(
        pairs=len(symbols), rate=args.rate, depth=args.depth, connections=len(conns),
        seconds=round(wall, 2), frames=frames, frames_per_s=round(frames / wall, 1),
        asked_per_s=round(len(symbols) * args.rate, 1),
        sim_cores=round((sim1 - sim0) / wall, 3),
        sim_us_per_frame=round((sim1 - sim0) / max(frames, 1) * 1e6, 1),
        sim_rss_mb=round(rss, 1),
        late_p50_ms=round(statistics.median(late) * 1000, 1) if late else float("nan"),
        late_p99_ms=round(late[int(len(late) * 0.99)] * 1000, 1) if late else float("nan"),
        client_cores=round((me1 - me0) / wall, 3),
        load_1min=round(os.getloadavg()[0], 1),
        sim_behind_warnings=None,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3000, help="kms sim --synthetic N")
    ap.add_argument("--rate", type=float, default=3.0, help="updates a second per pair")
    ap.add_argument("--seconds", type=float, default=30.0, help="measurement window")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--depth", type=int, default=10, choices=(10, 25, 100, 500, 1000))
    ap.add_argument("--per-connection", type=int, default=200)
    ap.add_argument("--url", help="measure a simulator already running (give --pid too)")
    ap.add_argument("--pid", type=int, help="the running simulator's process id")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryFile("w+") as sim_log:
        proc = None
        if args.url:
            if not args.pid or not args.url.startswith("ws://127.0.0.1:"):
                raise SystemExit("--url needs --pid, and a ws://127.0.0.1:PORT/v2 URL")
            url, pid = args.url, args.pid
        else:
            proc, url = start_sim(args.pairs, args.rate, sim_log)
            pid = proc.pid
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        try:
            result = asyncio.run(measure("127.0.0.1", port, pid, args))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)
        if proc is not None:
            sim_log.seek(0)
            behind = sum("fell" in line and "behind" in line for line in sim_log)
            result = Result(**{**asdict(result), "sim_behind_warnings": behind})
    if result.client_cores > CLIENT_LIMIT:
        raise SystemExit(
            f"no figure: the counting client used {result.client_cores} of a core (more than "
            f"{CLIENT_LIMIT}), so it may be what limited frames/s ({result.frames_per_s}/s)")
    if args.json:
        print(json.dumps(asdict(result)))
        return
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, kms sim --synthetic "
          f"{args.pairs} --rate {args.rate:g}, {result.pairs} online pairs at depth {args.depth}")
    for key, value in asdict(result).items():
        print(f"  {key:20s} {value}")


if __name__ == "__main__":
    main()
