"""``feed/options.py``: a feed client is never half-configured; bad values are refused when
the options are built, before anything is sent. (Its defaults equal the settings' defaults:
``test_config.py``.)"""

from __future__ import annotations

import dataclasses

import pytest

from krakenstream.errors import ConfigError, InputError
from krakenstream.feed.options import FeedOptions


def test_the_defaults_are_krakens_and_can_be_replaced() -> None:
    options = FeedOptions()
    assert options.url == "wss://ws.kraken.com/v2" and options.depth == 10
    local = dataclasses.replace(options, url="ws://127.0.0.1:8765/v2", depth=1000)
    assert (local.url, local.depth) == ("ws://127.0.0.1:8765/v2", 1000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        local.depth = 25  # type: ignore[misc]


def test_a_url_that_is_not_a_websocket_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"kraken.url: 'http://127.0.0.1:9/v2' is not a "
                                          "WebSocket URL"):
        FeedOptions(url="http://127.0.0.1:9/v2")


@pytest.mark.parametrize("change,match", [
    ({"depth": 20}, "book depth 20 is not supported"),
    ({"heartbeat_timeout": 0}, "must be > 0"),
    ({"ack_timeout": -1}, "must be > 0"),
    ({"open_timeout": 0}, "must be > 0"),
    ({"subscribe_batch": 0}, "must be >= 1"),
    ({"queue_size": 0}, "must be >= 1"),
    ({"pairs_per_connection": 0}, "must be >= 1"),
    ({"connect_limit": 0}, "must be >= 1"),
    ({"max_pairs": 0}, "must be >= 1"),
    ({"connect_spacing": -0.1}, "connect_spacing must be >= 0"),
    ({"backoff_initial": -1}, "backoff_initial and backoff_max must be >= 0"),
    ({"backoff_max": -1}, "backoff_initial and backoff_max must be >= 0"),
])
def test_bad_values_are_refused_when_built(change: dict[str, float], match: str) -> None:
    with pytest.raises(InputError, match=match):
        FeedOptions(**change)  # type: ignore[arg-type]


def test_edges_that_are_allowed() -> None:
    edge = FeedOptions(connect_spacing=0, backoff_initial=0, backoff_max=0, subscribe_batch=1,
                       queue_size=1, pairs_per_connection=1, connect_limit=1, max_pairs=1)
    assert edge.connect_spacing == 0 and edge.queue_size == 1
