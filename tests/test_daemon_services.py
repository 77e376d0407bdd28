"""Services.close: the roles stop and the backends close in the order the data flows."""

from __future__ import annotations

from typing import Any

import pytest

from krakenstream.config import Settings
from krakenstream.daemon.metrics import Metrics
from krakenstream.daemon.services import Services

DATA_FLOW_ORDER = [
    "orderbook.stop",  # no more publishing
    "bus.flush",  # what the bus buffers reaches its transport (Kafka: the broker)
    "history_writer.stop",  # the analysis role drains and stores what arrived
    "bus.close",
    "store.close",
    "auth.close",
]


class Recorder:
    """Stands in for a role or a backend; records each call, in one list for all of them."""

    def __init__(self, name: str, calls: list[str], *, fails: str | None = None) -> None:
        self.name, self.calls, self.fails = name, calls, fails

    def __getattr__(self, method: str) -> Any:
        async def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append(f"{self.name}.{method}")
            if method == self.fails:
                raise RuntimeError(f"{self.name}.{method} failed (test)")

        return record


def services(calls: list[str], *, failing: str | None = None) -> Services:
    def part(name: str) -> Any:
        what, _, method = (failing or "").partition(".")
        return Recorder(name, calls, fails=method if what == name else None)

    return Services(
        settings=Settings(), roles=("orderbook", "analysis", "gateway"), metrics=Metrics(),
        bus=part("bus"), store=part("store"), auth=part("auth"),
        orderbook=part("orderbook"), history_writer=part("history_writer"),
    )


async def test_close_follows_the_data_flow() -> None:
    calls: list[str] = []
    await services(calls).close()
    assert calls == DATA_FLOW_ORDER


@pytest.mark.parametrize("failing", DATA_FLOW_ORDER)
async def test_a_step_that_fails_does_not_keep_the_rest_open(
    failing: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    await services(calls, failing=failing).close()
    assert calls == DATA_FLOW_ORDER
    assert any("failed; closing the rest" in r.getMessage() for r in caplog.records)


async def test_without_the_orderbook_and_analysis_roles_the_bus_still_flushes_first() -> None:
    calls: list[str] = []
    s = services(calls)
    s.orderbook = s.history_writer = None
    await s.close()
    assert calls == ["bus.flush", "bus.close", "store.close", "auth.close"]


async def test_the_history_writer_takes_a_whole_tick_from_the_in_process_bus(
        tmp_path: Any) -> None:
    from krakenstream.config import load_settings
    from krakenstream.daemon.history_writer import IN_PROCESS_BATCH, KAFKA_BATCH
    from krakenstream.daemon.services import build_services

    settings = load_settings(env={"KMS_HOME": str(tmp_path)})
    assert settings.bus.backend == "memory"
    built = await build_services(settings, ("analysis",), start=False)
    try:
        assert built.history_writer is not None
        assert built.history_writer.batch_size == IN_PROCESS_BATCH == 3_000
        assert KAFKA_BATCH == 500 < IN_PROCESS_BATCH
    finally:
        await built.close()
