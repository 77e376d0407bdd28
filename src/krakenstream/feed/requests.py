"""What the subscription state machine (:mod:`.subscriptions`) sends and remembers: requests,
where each pair's subscription stands, and the pacing between requests. Pure values.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import orjson

#: after ``Exceeded msg rate`` requests are at least this far apart...
SLOW_PACING = 0.5
#: ...doubling with each new complaint, up to this
MAX_PACING = 10.0
#: each request answered without complaint brings the pacing this much closer to the setting
EASE_FACTOR = 0.8


class Sub(enum.Enum):
    """Where one pair's book subscription stands on the current connection."""

    NONE = "none"  #: not subscribed (nothing sent, or unsubscribed, or refused)
    PENDING = "pending"  #: subscribe sent, no answer yet
    ACTIVE = "active"  #: subscribed
    CLOSING = "closing"  #: unsubscribe sent, no answer yet


@dataclass(slots=True)
class PairSub:
    state: Sub = Sub.NONE
    #: unsubscribe then subscribe again as soon as possible (void book)
    resync: bool = False
    #: the exchange refused it on this connection: do not retry until reconnect or add_pairs
    refused: bool = False


@dataclass(frozen=True, slots=True)
class Request:
    """A request to write on the socket (``text()`` is the frame)."""

    req_id: int
    method: str  #: ``subscribe``, ``unsubscribe`` or ``ping``
    channel: str | None = None  #: ``book`` or ``instrument``; None for a ping
    symbols: tuple[str, ...] = ()
    depth: int | None = None

    def text(self) -> str:
        if self.channel is None:
            return orjson.dumps({"method": self.method, "req_id": self.req_id}).decode()
        params: dict[str, Any] = {"channel": self.channel}
        if self.channel == "book":
            params["symbol"] = list(self.symbols)
            params["depth"] = self.depth  # an unsubscribe names the depth too
            if self.method == "subscribe":
                params["snapshot"] = True
        return orjson.dumps(
            {"method": self.method, "params": params, "req_id": self.req_id}
        ).decode()


@dataclass(slots=True)
class Waiting:
    """A request sent and not fully answered."""

    request: Request
    sent_at: float
    #: symbols still waiting for their answer (Kraken answers one symbol at a time)
    symbols: set[str] = field(default_factory=set)


class Pacing:
    """When the next request may go: ``setting`` seconds apart, further after a complaint.

    Kraken answers a client that sends too fast with ``Exceeded msg rate`` (its limit is
    dynamic and undocumented): each complaint doubles the interval (at least
    :data:`SLOW_PACING`, at most :data:`MAX_PACING`) and holds the next request back that
    long; each request answered without complaint eases it back towards the setting.
    """

    __slots__ = ("setting", "interval", "next_at", "complaints")

    def __init__(self, setting: float) -> None:
        self.setting = max(0.0, setting)
        self.interval = self.setting
        self.next_at = 0.0
        self.complaints = 0

    def ready(self, now: float) -> bool:
        return now >= self.next_at

    def sent(self, now: float) -> None:
        self.next_at = now + self.interval

    def slow_down(self, now: float) -> None:
        self.complaints += 1
        self.interval = min(MAX_PACING, max(SLOW_PACING, self.interval * 2))
        self.next_at = max(self.next_at, now + self.interval)

    def ease(self) -> None:
        if self.interval > self.setting:
            self.interval = max(self.setting, self.interval * EASE_FACTOR)
