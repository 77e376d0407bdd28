"""What one daemon process runs: its roles and the backends they share, built from settings.

``Services`` is the one object the gateway is given. Each role this process runs (``roles``,
named as in ``daemon.roles``) is one object here, and which exist depends on those roles:

- the ``orderbook`` role is :attr:`Services.orderbook` (None without it: the gateway then
  serves live books from the latest snapshot on the bus);
- the ``analysis`` role is :attr:`Services.history_writer` (it writes history; its name in
  the configuration stays ``analysis``);
- the ``gateway`` role is the HTTP app built around these services; ``auth`` and ``store``
  exist whenever it runs (``store`` also for the ``analysis`` role).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from ..bus.base import SnapshotBus
from ..config import ROLES, Settings
from ..errors import ConfigError
from ..store.archive import Archive, ArchiveRoller
from ..store.base import HistoryStore
from ..users.service import AuthService
from .history_writer import IN_PROCESS_BATCH, KAFKA_BATCH, HistoryWriter
from .metrics import Metrics
from .orderbook import OrderbookRole
from .wiring import make_bus, make_roller, open_archive, open_auth, open_store

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    roles: tuple[str, ...]
    metrics: Metrics
    bus: SnapshotBus
    store: HistoryStore | None = None
    auth: AuthService | None = None
    orderbook: OrderbookRole | None = None
    history_writer: HistoryWriter | None = None
    #: the Parquet archive (read by the gateway; written by the roller of the analysis role)
    archive: Archive | None = None
    roller: ArchiveRoller | None = None
    started_at: float = field(default_factory=time.time)

    def problems(self) -> list[str]:
        """What is wrong in this process that needs no probe to see: a role's task that
        died, history that cannot be written, snapshots lost on their way to history.
        ``/health`` adds the backends' probes and the feed's pairs."""
        out: list[str] = []
        if self.orderbook is not None:
            out += self.orderbook.problems()
        if self.history_writer is not None:
            out += self.history_writer.problems()
        stats = self.bus.stats()
        if stats.losing:
            out.append(f"bus ({self.settings.bus.backend}): snapshots are being dropped on "
                       f"their way to history ({stats.dropped} dropped so far)")
        return out

    async def close(self) -> None:
        """Stop the roles and close the backends in the order the data flows.

        1. the orderbook role stops: nothing more is published;
        2. the bus flushes: what it buffers reaches its transport (a Kafka producer's buffer
           reaches the broker), so the readers can still read it;
        3. the history writer (the ``analysis`` role) drains what reached it and stores it;
        4. the archive's roller cuts its open rolls from the store into files;
        5. the bus closes;
        6. the history store, then the users' store, close.

        A step that fails is logged and the rest still run: one broken part must not leave
        the others open.
        """
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if self.orderbook is not None:
            steps.append(("orderbook role", self.orderbook.stop))
        steps.append(("bus flush", self.bus.flush))
        if self.history_writer is not None:
            steps.append(("history writer (analysis role)", self.history_writer.stop))
        if self.roller is not None:
            steps.append(("archive roller", self.roller.stop))
        steps.append(("bus", self.bus.close))
        if self.store is not None:
            steps.append(("history store", self.store.close))
        if self.auth is not None:
            steps.append(("users store", self.auth.close))
        for what, step in steps:
            try:
                await step()
            except Exception:
                log.exception("closing the %s failed; closing the rest", what)


def check_roles(roles: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for role in roles:
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        if role not in out:
            out.append(role)
    if not out:
        raise ConfigError("no role to run", hint=f"roles: {', '.join(ROLES)}")
    return tuple(out)


async def build_services(
    settings: Settings,
    roles: Sequence[str] | None = None,
    *,
    metrics: Metrics | None = None,
    start: bool = True,
) -> Services:
    """Open the backends the roles need and (with ``start``) start the roles.

    On any failure what was opened is closed again before the error propagates.
    """
    chosen = check_roles(settings.daemon.roles if roles is None else roles)
    metrics = metrics or Metrics()
    bus = make_bus(settings)
    services = Services(settings=settings, roles=chosen, metrics=metrics, bus=bus)
    try:
        await bus.start()
        if "analysis" in chosen or "gateway" in chosen:
            services.store = open_store(settings)
            await services.store.open()
            services.archive = open_archive(settings)
        if "gateway" in chosen:
            services.auth = await open_auth(settings)
        if "analysis" in chosen:
            assert services.store is not None
            if services.archive is not None:
                services.roller = make_roller(settings, services.archive, services.store)
                if start:
                    # one writer (in-process bus) catches every pair up; a Kafka group's
                    # writers each catch up the pairs they are given
                    await services.roller.start(catch_up=settings.bus.backend == "memory")
            services.history_writer = HistoryWriter(
                bus, services.store, group=settings.kafka.group, metrics=metrics,
                archive=services.roller,
                batch_size=IN_PROCESS_BATCH if settings.bus.backend == "memory"
                else KAFKA_BATCH,
            )
            if start:
                await services.history_writer.start()
        if "orderbook" in chosen:
            services.orderbook = OrderbookRole(settings.kraken, bus, metrics=metrics)
            if start:
                await services.orderbook.start()
    except BaseException:
        await services.close()
        raise
    log.info("services up roles=%s bus=%s store=%s users=%s", ",".join(chosen),
             settings.bus.backend, settings.store.backend if services.store else "-",
             settings.users.backend if services.auth else "-")
    return services
