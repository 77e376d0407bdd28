"""The Kraken WebSocket v2 feed: the client that keeps exact books, and the recorder.

Everything with a socket lives here; the books, the parsing and the checksums are the pure
core's (:mod:`krakenstream.core`). Reconnect delays are decided by the pure
:mod:`krakenstream.core.backoff`.
"""

from .client import FeedClient
from .options import FeedOptions
from .status import ConnectionStatus, FeedEvent, PairState, PairStatus

__all__ = [
    "ConnectionStatus",
    "FeedClient",
    "FeedEvent",
    "FeedOptions",
    "PairState",
    "PairStatus",
]
