"""The values the feed client is configured with: plain values, not the settings.

:class:`FeedOptions` holds what ``[kraken]`` says about the connection (everything but the
pairs, which the orderbook role shards and ``kms record`` takes as arguments). The daemon's
wiring and the CLI build it from the settings (:func:`krakenstream.config.as_options`); the
defaults here are the settings' defaults, which ``tests/test_config.py`` holds equal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FeedOptions:
    url: str = "wss://ws.kraken.com/v2"
    depth: int = 10
    #: no frame at all (heartbeats included) for this long marks the feed stale
    heartbeat_timeout: float = 5.0
    #: symbols per subscribe request, and the pause between requests
    subscribe_batch: int = 20
    subscribe_pacing: float = 0.05
    #: frames buffered between the socket reader and the book processing
    queue_size: int = 10_000
    backoff_initial: float = 0.5
    backoff_max: float = 60.0
