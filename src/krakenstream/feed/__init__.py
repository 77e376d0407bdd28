"""The Kraken WebSocket v2 feed: the client that keeps exact books, and the recorder.

Everything with a socket lives here; the books, the parsing and the checksums are the pure
core's (:mod:`krakenstream.core`). Reconnect delays are decided by the pure
:mod:`krakenstream.core.backoff`.

Modules: :mod:`.subscriptions` is the pure state machine (frames in, requests and pair
state changes out; with :mod:`.requests` for what it sends and its pacing);
:mod:`.client` the asyncio connection around it (:mod:`.connect` opens the socket,
:mod:`.changes` hands state changes on); :mod:`.options` and :mod:`.status` are the values
going in and out; :mod:`.recorder` writes a feed to a file.
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
