"""``/health`` and ``/metrics``: what an operator or a probe reads, without a token.

``/health`` always answers 200 once the app is up; ``status`` says ``ok`` or ``degraded`` and
``problems`` says why: a pair not live, the feed down, a backend that did not answer a probe
within :data:`HEALTH_TIMEOUT`, history that cannot be written (the history writer's last
write failed: a full disk, Redis refusing), a role's task that died, snapshots dropped on
their way to history (the bus's group queue or Kafka buffer full). The same router serves a
process that runs no gateway, on ``daemon.health_port`` (:func:`.app.create_health_app`).

``/metrics`` refreshes the gauges read from the roles and the bus (and the count of what
:meth:`.Services.problems` sees, for an alert), then renders the registry as Prometheus
text in a worker thread (the registry is thread-safe): at 3,000 pairs the rendering took
240-440 ms of the event loop, and the tick it met was stored that much later.
"""

# no "from __future__ import annotations": FastAPI reads the route signatures at runtime

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from ... import __version__
from ...feed.status import PairState
from ..orderbook import OrderbookRole
from ..services import Services
from .deps import Gateway, State
from .responses import json_response

log = logging.getLogger("krakenstream.gateway")

#: seconds a health probe of one backend may take before it counts as down
HEALTH_TIMEOUT = 2.0
#: /health names pairs that are not live one by one up to this many, then counts the rest
HEALTH_PAIR_PROBLEMS = 20
#: /health lists every pair up to this many; past it only the pairs not live, this many at
#: most, and counts the rest (``pairs_omitted``): a probe's answer stays a few kilobytes
#: whatever is tracked (10,000 pairs made it 2.4 MB); ``/api/pairs`` lists them all
HEALTH_PAIRS = 50

router = APIRouter(tags=["operations"])


def feed_health(role: OrderbookRole) -> tuple[dict[str, Any], list[str]]:
    """The feed's part of /health: the connections summed up (``connection``, as before)
    and one by one (``connections``), pairs by state, the pairs themselves (every one up to
    :data:`HEALTH_PAIRS`, else that many of those not live), the pairs Kraken refused lately
    and those ``kraken.max_pairs`` left out; and its problems."""
    conn = role.connection()
    status = role.status()
    states: dict[str, int] = {}
    for st in status.values():
        states[st.state.value] = states.get(st.state.value, 0) + 1
    names = sorted(status)
    if len(names) > HEALTH_PAIRS:
        names = [p for p in names if status[p].state is not PairState.LIVE][:HEALTH_PAIRS]
    pairs = {p: status[p].to_dict() for p in names}
    connections = role.connections()
    feed = {"connection": conn.to_dict(), "connections": [c.to_dict() for c in connections],
            "states": states, "pairs": pairs, "pairs_omitted": len(status) - len(pairs),
            "refused": len(role.refused), "over_max_pairs": role.feed.over_max_pairs}
    problems: list[str] = []
    if not conn.connected:
        problems.append("feed: not connected")
        if len(connections) > 1:
            problems.extend(
                f"feed: connection {c.name} is {c.state}"
                + (f" ({c.last_error})" if c.last_error else "")
                for c in connections if not c.connected)
    bad = [(p, st.state.value) for p, st in sorted(status.items())
           if st.state is not PairState.LIVE]
    problems.extend(f"feed: {p} is {state}" for p, state in bad[:HEALTH_PAIR_PROBLEMS])
    if len(bad) > HEALTH_PAIR_PROBLEMS:
        problems.append(f"feed: {len(bad) - HEALTH_PAIR_PROBLEMS} more pairs not live "
                        f"({len(bad)} of {len(status)})")
    if role.feed.over_max_pairs:
        problems.append(f"feed: {role.feed.over_max_pairs} pairs left out: "
                        f"kraken.max_pairs ({role.settings.max_pairs}) reached")
    return feed, problems


@router.get("/health")
async def health(gw: State) -> Response:
    """Feed state per pair, bus, store and users reachability; always 200 once up."""
    services, settings = gw.services, gw.settings
    problems: list[str] = []
    feed: dict[str, Any] | None = None
    if services.orderbook is not None:
        feed, feed_problems = feed_health(services.orderbook)
        problems.extend(feed_problems)
    bus_ok, store_ok, users_ok = await asyncio.gather(
        probe(services.bus.healthy()),
        probe(services.store.ping()) if services.store is not None else _none(),
        probe(services.auth.store.ping()) if services.auth is not None else _none(),
    )
    bus_stats = services.bus.stats()
    problems += services.problems() + gw.hub.problems()
    if not bus_ok:
        problems.append(f"bus ({settings.bus.backend}) unreachable")
    if services.store is not None and not store_ok:
        problems.append(f"store ({settings.store.backend}) unreachable")
    if services.auth is not None and not users_ok:
        problems.append(f"users ({settings.users.backend}) unreachable")
    return json_response({
        "status": "degraded" if problems else "ok",
        "problems": problems,
        "version": __version__,
        # which process answers: `kms daemon start` knows its child from another daemon
        "pid": os.getpid(),
        "uptime_s": round(time.time() - services.started_at, 3),
        "roles": list(services.roles),
        "feed": feed,
        "bus": {"backend": settings.bus.backend, "healthy": bus_ok,
                **dataclasses.asdict(bus_stats)},
        "store": None if services.store is None else
        {"backend": settings.store.backend, "healthy": store_ok},
        "users": None if services.auth is None else
        {"backend": settings.users.backend, "healthy": users_ok},
        "history": _history(services),
        "heavy_reads": {"summaries": gw.summaries.state(), "history": gw.exports.state()},
        "stream": {"clients": gw.hub.client_count, "cut_off": gw.hub.cut_off,
                   "max_clients": gw.hub.max_clients, "refused": dict(gw.hub.refused)},
        "archive": await _archive_health(gw),
    })


def _history(services: Services) -> dict[str, Any] | None:
    """The history writer's part (the analysis role), None in a process without it."""
    writer = services.history_writer
    if writer is None:
        return None
    return {"writing": writer.failing_since is None, "failing_since": writer.failing_since,
            "last_error": writer.last_error, **dataclasses.asdict(writer.stats)}


async def _archive_health(gw: Gateway) -> dict[str, Any] | None:
    """The archive's disk use (per UTC day, all pairs) and its writer's counters."""
    services = gw.services
    if services.archive is None or gw.usage is None:
        return None
    out = (await gw.usage.get()).health(str(services.archive.root))
    if services.roller is not None:
        out["writer"] = dataclasses.asdict(services.roller.stats)
    return out


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(gw: State) -> Response:
    """Prometheus text: feed, snapshots, bus, logins and HTTP counters."""
    services = gw.services
    m = services.metrics
    if services.orderbook is not None:
        services.orderbook.export_metrics()
    stats = services.bus.stats()
    m.bus_published.set(stats.published)
    m.bus_dropped.set(stats.dropped)
    m.bus_losing.set(1 if stats.losing else 0)
    m.bus_client_errors.set(stats.client_errors)
    writer = services.history_writer
    m.history_failing.set(1 if writer is not None and writer.failing_since is not None else 0)
    m.problems.set(len(services.problems() + gw.hub.problems()))
    m.heavy_busy.labels("summary").set(gw.summaries.busy)
    m.heavy_busy.labels("history").set(gw.exports.busy)
    if services.auth is not None:
        t = services.auth.throttle.stats()
        m.logins_failed.set(t.failures)
        m.logins_throttled.set(t.throttled)
    # rendering thousands of pairs' series takes a few hundred ms (3,000 pairs: ~18,000
    # lines, ~250 ms): in a thread, the event loop gets its turns meanwhile (the GIL changes
    # hands every few ms) instead of stopping the ticks, the feed and the history writer
    return Response(await asyncio.to_thread(m.render), media_type=CONTENT_TYPE_LATEST)


async def probe(check: Awaitable[Any]) -> bool:
    """Whether a backend answered within HEALTH_TIMEOUT."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            result = await check
    except Exception as exc:  # whatever a probe raises, health answers (and says "down")
        log.debug("health probe failed: %r", exc)
        return False
    return result is not False


async def _none() -> bool:
    return False
