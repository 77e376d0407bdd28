"""Snapshot history in Redis: one sorted set per pair, scored by ts, member = the snapshot.

Why a sorted set and not a Stream with MAXLEN:

* Idempotence keyed by ``(pair, ts)`` whatever the arrival order. A Stream with explicit IDs
  ``<ts>-0`` rejects any ID not above its last one, so a late snapshot (a redelivery after a
  consumer-group rebalance, two orderbook processes during a handover) is indistinguishable
  from a duplicate and would be lost; a sorted set takes any ts, and the add script skips a
  ts that is already there (``ZCOUNT ts ts``, O(log n)).
* Range by time in both orders with a limit is one command: ``ZRANGE key lo hi BYSCORE
  [REV] LIMIT 0 n WITHSCORES``; the member IS the stored snapshot, so a range returns the
  payload in the same round trip (no second lookup in a hash), which is what the gateway's
  CSV / JSON-lines export streams.
* An exact cap: the add script trims with ``ZREMRANGEBYRANK key 0 -(cap+1)`` in the same
  atomic step (Stream ``MAXLEN =`` is exact too, but its ``~`` fast form is not, and the
  first point already rules Streams out). At query time the cap is applied once more from
  the rank of the cap-th newest member, so a lowered ``history_limit`` or another writer with
  a larger one never leaks extra rows into an answer.
* Streams' consumer groups are not needed: delivery is the bus's job (Kafka or in-process).

A member is the snapshot in its compact form (:mod:`krakenstream.core.codec`: msgpack of
scaled integers, about 170 bytes at depth 10 where its JSON took 900; members written before
hold the JSON and are read as they are, the first byte tells). It contains the ts, so two
snapshots of one pair are never the same member (a sorted set keeps one copy of equal
members: two identical books a second apart must stay two rows), and a ts that is a double
score stays exact (epoch ms are far below 2**53).

Keys (prefix from ``redis.prefix``): ``<prefix>history:<pair>`` (sorted set) and
``<prefix>history-pairs`` (set of pairs with data). One script call stores a batch's pairs
(up to ``pairs_per_call`` of them) and touches all their keys and the set, each declared in
``KEYS``, so this layout targets a single Redis (or one cluster slot per prefix with a hash
tag in the prefix, e.g. ``{kms}:``), as it did when a call stored one pair.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from ..core.codec import Encoded, encode
from ..core.snapshot import Snapshot
from ..errors import BackendUnavailable
from ..redact import redact_url
from .base import CHUNK_SIZE, Order, PagedHistory, Row

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 2.0
#: a command (a 10,000-row add script included) answering slower than this means trouble
COMMAND_TIMEOUT_S = 10.0
#: pairs stored by one call of the add script, at most (Redis runs a script alone: 500 pairs
#: hold it a few ms)
PAIRS_PER_CALL = 500

#: KEYS[1] the set of pairs, then each pair's sorted set (KEYS[1 + i] for the i-th pair);
#: ARGV[1] the cap, then for each pair in KEYS' order: the pair, how many snapshots follow,
#: then ts, snapshot, ts, snapshot...
#: Returns how many snapshots were newly stored and survived the trim.
_ADD_SCRIPT = """
local cap = tonumber(ARGV[1])
local kept = 0
local a = 2
for k = 2, #KEYS do
  local key = KEYS[k]
  local pair = ARGV[a]
  local last = a + 2 * tonumber(ARGV[a + 1])
  local inserted = {}
  for i = a + 2, last, 2 do
    local ts = ARGV[i]
    if redis.call('ZCOUNT', key, ts, ts) == 0 then
      redis.call('ZADD', key, ts, ARGV[i + 1])
      inserted[#inserted + 1] = tonumber(ts)
    end
  end
  a = last + 2
  if #inserted > 0 then
    redis.call('SADD', KEYS[1], pair)
    local n = redis.call('ZCARD', key)
    if n <= cap then
      kept = kept + #inserted
    else
      redis.call('ZREMRANGEBYRANK', key, 0, n - cap - 1)
      local floor = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
      for _, ts in ipairs(inserted) do
        if ts >= floor then
          kept = kept + 1
        end
      end
    end
  end
end
return kept
"""


def _rows(found: Any) -> list[Row]:
    """``ZRANGE ... WITHSCORES`` replies (member, score) as (ts, stored bytes) rows."""
    return [(int(score), data) for data, score in cast(list[tuple[bytes, float]], found)]


class RedisHistoryStore(PagedHistory):
    """:class:`~krakenstream.store.base.HistoryStore` in Redis sorted sets (see the module)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "kms:",
        history_limit: int = 10_000,
        chunk_size: int = CHUNK_SIZE,
        pairs_per_call: int = PAIRS_PER_CALL,
    ) -> None:
        if history_limit < 1:
            raise ValueError("history_limit must be at least 1")
        if pairs_per_call < 1:
            raise ValueError("pairs_per_call must be at least 1")
        self.url = url
        self.prefix = prefix
        self.history_limit = history_limit
        self.chunk_size = chunk_size
        self.pairs_per_call = pairs_per_call
        self._shown_url = redact_url(url)
        self._redis: Redis | None = None
        self._script: AsyncScript | None = None
        self._pairs_key = f"{prefix}history-pairs"

    def key(self, pair: str) -> str:
        """The sorted set holding ``pair``'s history."""
        return f"{self.prefix}history:{pair}"

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._redis is not None:
            return
        try:
            client = Redis.from_url(
                self.url,
                socket_connect_timeout=CONNECT_TIMEOUT_S,
                socket_timeout=COMMAND_TIMEOUT_S,
                # a blip is retried twice within ~0.3 s; a dead server fails fast
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2),
                health_check_interval=30,
            )
        except ValueError as exc:
            raise BackendUnavailable(f"bad Redis URL {self._shown_url}: {exc}") from exc
        self._redis = client
        self._script = client.register_script(_ADD_SCRIPT)
        try:
            await self.ping()
        except BaseException:
            await self.close()
            raise
        log.info("history store open: backend=redis url=%s prefix=%s cap=%d",
                 self._shown_url, self.prefix, self.history_limit)

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    @property
    def _r(self) -> Redis:
        if self._redis is None:
            raise BackendUnavailable(f"history store at Redis {self._shown_url} is not open")
        return self._redis

    @contextlib.contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(
                f"Redis at {self._shown_url} failed while {doing}: {exc}"
            ) from exc

    async def ping(self) -> None:
        with self._translated("answering a ping"):
            await self._r.ping()

    # -- writes ----------------------------------------------------------------------------

    async def add(self, snaps: Sequence[Snapshot]) -> int:
        return await self._add((s.pair, s.ts, encode(s)) for s in snaps)

    async def add_encoded(self, rows: Sequence[Encoded]) -> int:
        """:meth:`add` of snapshots already encoded: their bytes are stored as they are (the
        history writer's path from Kafka, whose records carry this form)."""
        return await self._add((e.pair, e.ts, e.data) for e in rows)

    async def _add(self, rows: Iterable[tuple[str, int, bytes]]) -> int:
        """Store ``(pair, ts, member)`` rows; answers how many were new."""
        by_pair: dict[str, list[int | bytes]] = {}
        for pair, ts, member in rows:
            found = by_pair.get(pair)
            if found is None:
                found = by_pair[pair] = []
            found += (ts, member)
        if not by_pair:
            return 0
        r, script = self._r, self._script
        assert script is not None  # set together with the client
        # one script call stores many pairs: a call per pair cost redis-py ~40 µs of the
        # event loop's time to pack and to parse (3,000 pairs a tick: 120 ms), the script
        # itself a few µs a pair in Redis; PAIRS_PER_CALL bounds how long one call holds
        # Redis (whose other clients, the gateway's reads, wait meanwhile)
        calls: list[tuple[list[str], list[int | bytes | str]]] = []
        pairs = list(by_pair.items())
        for i in range(0, len(pairs), self.pairs_per_call):
            keys = [self._pairs_key]
            argv: list[int | bytes | str] = [self.history_limit]
            for pair, members in pairs[i : i + self.pairs_per_call]:
                keys.append(self.key(pair))
                argv += (pair, len(members) // 2)
                argv += members
            calls.append((keys, argv))
        with self._translated("storing snapshots"):
            if len(calls) == 1:
                ((keys, argv),) = calls
                return int(await script(keys=keys, args=argv))
            # the calls in one round trip; the pipeline gives its connection back on every
            # path (a failure while it loads the script too, or asyncio logs "Unclosed
            # Pipeline client" over the real cause)
            async with r.pipeline(transaction=False) as pipe:
                for keys, argv in calls:
                    await script(keys=keys, args=argv, client=pipe)
                return sum(int(n) for n in await pipe.execute())

    # -- reads -----------------------------------------------------------------------------

    async def count(self, pair: str) -> int:
        with self._translated("counting snapshots"):
            n = await self._r.zcard(self.key(pair))
        return min(int(n), self.history_limit)

    async def pairs(self) -> list[str]:
        with self._translated("listing pairs"):
            members = await self._r.smembers(self._pairs_key)
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def _floor_ts(self, pair: str) -> int | None:
        """The ts of the cap-th newest snapshot when more than the cap are stored."""
        key, cap = self.key(pair), self.history_limit
        with self._translated("reading a history range"):
            if int(await self._r.zcard(key)) <= cap:
                return None
            found = await self._r.zrange(key, -cap, -cap, withscores=True)
        return int(found[0][1]) if found else None

    async def _fetch(self, pair: str, lo: int, hi: int, n: int, order: Order) -> list[Row]:
        desc = order == "desc"
        with self._translated("reading a history range"):
            found = await self._r.zrange(
                self.key(pair), hi if desc else lo, lo if desc else hi,
                desc=desc, byscore=True, offset=0, num=n, withscores=True,
            )
        return _rows(found)
