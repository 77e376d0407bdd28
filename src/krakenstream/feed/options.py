"""The values the feed client is configured with: plain values, not the settings.

:class:`FeedOptions` holds what ``[kraken]`` says about the connection (everything but the
pairs, which the orderbook role shards and ``kms record`` takes as arguments). The daemon's
wiring and the CLI build it from the settings (:func:`krakenstream.config.as_options`); the
defaults here are the settings' defaults, which ``tests/test_config.py`` holds equal. It checks
itself when built, so a client is never half-configured: a bad URL or depth is refused before
anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from ..core.pairs import check_depth
from ..errors import ConfigError, InputError


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
    #: a request unanswered for this long ends the connection
    ack_timeout: float = 10.0
    #: seconds the opening handshake may take
    open_timeout: float = 10.0
    #: a pool puts at most this many pairs on one connection
    pairs_per_connection: int = 200
    #: a pool's connection attempts in any 10 minutes, and the least time between two
    connect_limit: int = 60
    connect_spacing: float = 0.5
    #: a pool tracks at most this many pairs (named and brought by patterns together)
    max_pairs: int = 2_000

    def __post_init__(self) -> None:
        try:
            parse_uri(self.url)
        except InvalidURI as exc:
            raise ConfigError(
                f"kraken.url: {self.url!r} is not a WebSocket URL ({exc})") from exc
        check_depth(self.depth)
        if self.heartbeat_timeout <= 0 or self.ack_timeout <= 0 or self.open_timeout <= 0:
            raise InputError("heartbeat_timeout, ack_timeout and open_timeout must be > 0")
        if min(self.subscribe_batch, self.queue_size, self.pairs_per_connection,
               self.connect_limit, self.max_pairs) < 1:
            raise InputError("subscribe_batch, queue_size, pairs_per_connection, "
                             "connect_limit and max_pairs must be >= 1")
        if self.connect_spacing < 0:
            raise InputError("connect_spacing must be >= 0")
        if self.backoff_initial < 0 or self.backoff_max < 0:
            raise InputError("backoff_initial and backoff_max must be >= 0")
