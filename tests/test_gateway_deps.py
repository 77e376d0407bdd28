"""The app's state (gateway/deps.py): what it derives from the settings, and a 503 naming
what a process lacks when a route needs a backend or a role it does not run."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway_support import settings_for
from krakenstream.bus.memory import MemoryBus
from krakenstream.daemon.gateway.deps import Gateway
from krakenstream.daemon.gateway.params import HISTORY_LIMIT, KRAKEN_DEPTH, MIN_PASSWORD_LENGTH
from krakenstream.daemon.metrics import Metrics
from krakenstream.daemon.services import Services
from krakenstream.errors import BackendUnavailable


def bare_services(home: Path, **env: str) -> Services:
    """Services with a bus and nothing else: no store, no users, no roles."""
    return Services(settings=settings_for(home, **env), roles=("gateway",), metrics=Metrics(),
                    bus=MemoryBus())


def test_what_the_state_takes_from_the_settings(kms_home: Path) -> None:
    gateway = Gateway.over(bare_services(kms_home, KMS_STORE_HISTORY_LIMIT="500",
                                         KMS_KRAKEN_DEPTH="25"))
    assert gateway.maxima == {HISTORY_LIMIT: 500, KRAKEN_DEPTH: 25, MIN_PASSWORD_LENGTH: 8}
    # a bus snapshot is live for three snapshot intervals (0.2 s here) and a second
    assert gateway.live_age_ms == pytest.approx(1600.0)
    assert gateway.latest.ttl == pytest.approx(0.1)  # min(0.1 s, half an interval)
    assert gateway.hub.backlog == gateway.settings.gateway.ws_backlog


def test_a_missing_part_is_a_503_naming_it(kms_home: Path) -> None:
    gateway = Gateway.over(bare_services(kms_home))
    with pytest.raises(BackendUnavailable, match="no history store"):
        gateway.store()
    with pytest.raises(BackendUnavailable, match="no users backend"):
        gateway.auth()
    with pytest.raises(BackendUnavailable, match="does not run the orderbook role") as info:
        gateway.orderbook()
    assert info.value.hint == "kms daemon run --roles orderbook,..."
    with pytest.raises(BackendUnavailable, match="no users backend"):
        gateway.tokens.verify("any.token.at-all")  # no users, no verdict
