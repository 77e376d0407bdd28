"""``/health`` and ``/metrics``: what an operator or a probe reads, without a token.

``/health`` always answers 200 once the app is up; ``status`` says ``ok`` or ``degraded`` and
``problems`` says why (a pair not live, the feed down, a backend that did not answer a probe
within :data:`HEALTH_TIMEOUT`). ``/metrics`` refreshes the gauges read from the roles and the
bus, then renders the registry as Prometheus text.
"""

# no "from __future__ import annotations": FastAPI reads the route signatures at runtime

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from ... import __version__
from ...feed.status import PairState
from .deps import State
from .responses import json_response

log = logging.getLogger("krakenstream.gateway")

#: seconds a health probe of one backend may take before it counts as down
HEALTH_TIMEOUT = 2.0

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health(gw: State) -> Response:
    """Feed state per pair, bus, store and users reachability; always 200 once up."""
    services, settings = gw.services, gw.settings
    problems: list[str] = []
    feed: dict[str, Any] | None = None
    if services.orderbook is not None:
        conn = services.orderbook.connection()
        pairs = {p: s.to_dict() for p, s in sorted(services.orderbook.status().items())}
        feed = {"connection": conn.to_dict(), "pairs": pairs}
        if not conn.connected:
            problems.append("feed: not connected")
        problems.extend(f"feed: {p} is {s['state']}" for p, s in pairs.items()
                        if s["state"] != PairState.LIVE.value)
    bus_ok, store_ok, users_ok = await asyncio.gather(
        probe(services.bus.healthy()),
        probe(services.store.ping()) if services.store is not None else _none(),
        probe(services.auth.store.ping()) if services.auth is not None else _none(),
    )
    bus_stats = services.bus.stats()
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
        "uptime_s": round(time.time() - services.started_at, 3),
        "roles": list(services.roles),
        "feed": feed,
        "bus": {"backend": settings.bus.backend, "healthy": bus_ok,
                **dataclasses.asdict(bus_stats)},
        "store": None if services.store is None else
        {"backend": settings.store.backend, "healthy": store_ok},
        "users": None if services.auth is None else
        {"backend": settings.users.backend, "healthy": users_ok},
        "stream": {"clients": gw.hub.client_count, "cut_off": gw.hub.cut_off},
    })


@router.get("/metrics", response_class=Response)
async def metrics(gw: State) -> Response:
    """Prometheus text: feed, snapshots, bus, logins and HTTP counters."""
    services = gw.services
    m = services.metrics
    if services.orderbook is not None:
        services.orderbook.export_metrics()
    stats = services.bus.stats()
    m.bus_published.set(stats.published)
    m.bus_dropped.set(stats.dropped)
    if services.auth is not None:
        t = services.auth.throttle.stats()
        m.logins_failed.set(t.failures)
        m.logins_throttled.set(t.throttled)
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)


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
