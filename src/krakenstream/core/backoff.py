"""How long to wait before the next attempt: the one backoff of krakenstream, pure (no
asyncio, no clock, and no randomness of its own: the caller passes a :class:`random.Random`).

Every retry loop uses it: the Kraken feed's reconnects (:class:`ReconnectSchedule`, with the
policy below), the Kafka bus's reconnects, the history writer's store retries and the
client's WebSocket reconnects (:func:`backoff`, capped exponential with full jitter).

Kraken bans an IP that opens more than about 150 connections in ten minutes, so reconnects
back off exponentially with a cap and *full jitter* (a uniform draw between 0 and the capped
exponential delay), which spreads many clients' retries instead of synchronising them. Two
reasons bend that rule: a plain drop of a healthy connection (a proxy restart, code 1001) is
retried at once a few times, since waiting only loses data; during ``maintenance`` attempts
are never closer than :data:`MAINTENANCE_DELAY` seconds.

The randomness comes from the :class:`random.Random` passed in, so tests pin every delay.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import InputError

#: the least wait between attempts while the exchange says ``maintenance``
MAINTENANCE_DELAY = 5.0
#: immediate retries after a plain drop before backing off
IMMEDIATE_RETRIES = 3
#: a connection that stayed up this long counts as healthy: the attempt count starts over
STABLE_AFTER = 10.0


class Reason(enum.Enum):
    """Why the previous connection ended (or never began)."""

    DROPPED = "dropped"  #: the socket closed under us
    STALE = "stale"  #: no frame at all within the heartbeat timeout
    OVERFLOW = "overflow"  #: the frame queue overflowed: we dropped it to resync everything
    CONNECT_FAILED = "connect_failed"  #: the connection could not be opened
    MAINTENANCE = "maintenance"  #: the exchange announced maintenance
    PROTOCOL = "protocol"  #: the exchange did not answer as it should (acks missing...)


def backoff(
    initial: float, maximum: float, *, rng: random.Random, factor: float = 2.0
) -> Iterator[float]:
    """Endless capped exponential delays with full jitter: ``uniform(0, min(max, i*f**n))``.

    The cap applies before the jitter, so no delay exceeds ``maximum``; once the cap is
    reached every delay is drawn from ``[0, maximum]``.
    """
    if initial < 0 or maximum < 0 or factor < 1:
        raise InputError("backoff needs initial >= 0, maximum >= 0 and factor >= 1")
    draw = rng.uniform
    ceiling = initial
    while True:
        yield draw(0.0, min(maximum, ceiling))
        if ceiling < maximum:
            ceiling *= factor


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """The knobs of :func:`next_delay` (from ``[kraken] backoff_initial/backoff_max``)."""

    initial: float = 0.5
    maximum: float = 60.0
    factor: float = 2.0
    immediate_retries: int = IMMEDIATE_RETRIES
    maintenance_delay: float = MAINTENANCE_DELAY

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0 or self.factor < 1:
            raise InputError("backoff needs initial >= 0, maximum >= 0 and factor >= 1")
        if self.immediate_retries < 0 or self.maintenance_delay < 0:
            raise InputError("immediate_retries and maintenance_delay must be >= 0")


def exponential_ceiling(policy: BackoffPolicy, attempt: int) -> float:
    """The jitter's upper bound for the ``attempt``-th consecutive retry (0-based)."""
    if attempt <= 0 or policy.factor == 1:
        return min(policy.maximum, policy.initial)
    # stop multiplying once past the cap: no float overflow after thousands of attempts
    ceiling = policy.initial
    for _ in range(attempt):
        ceiling *= policy.factor
        if ceiling >= policy.maximum:
            return policy.maximum
    return min(policy.maximum, ceiling)


def next_delay(
    reason: Reason, attempt: int, policy: BackoffPolicy, rng: random.Random
) -> float:
    """Seconds to wait before the next attempt.

    ``attempt`` counts the consecutive unsuccessful attempts before this one (0 for the first
    retry after a healthy connection). A plain drop is retried at once for the first
    ``immediate_retries`` attempts; every other reason, and a drop that keeps happening,
    backs off exponentially with full jitter up to ``policy.maximum``; maintenance never
    waits less than ``policy.maintenance_delay``.
    """
    if reason is Reason.DROPPED and attempt < policy.immediate_retries:
        return 0.0
    exp_attempt = attempt - policy.immediate_retries if reason is Reason.DROPPED else attempt
    delay = rng.uniform(0.0, exponential_ceiling(policy, exp_attempt))
    if reason is Reason.MAINTENANCE:
        return max(policy.maintenance_delay, delay)
    return delay


class ReconnectSchedule:
    """The consecutive-attempt count behind :func:`next_delay`; still pure (times passed in).

    ``failed(reason)`` answers the delay before the next attempt and counts the attempt;
    ``connected_for(seconds)`` tells it how long the last connection lasted: one that was
    healthy for :data:`STABLE_AFTER` seconds resets the count, so a rare drop is retried at
    once while a server that drops every connection straight away is backed off.
    """

    __slots__ = ("policy", "rng", "attempt", "stable_after")

    def __init__(
        self,
        policy: BackoffPolicy,
        rng: random.Random,
        *,
        stable_after: float = STABLE_AFTER,
    ) -> None:
        self.policy = policy
        self.rng = rng
        self.attempt = 0
        self.stable_after = stable_after

    def connected_for(self, seconds: float) -> None:
        if seconds >= self.stable_after:
            self.attempt = 0

    def failed(self, reason: Reason) -> float:
        delay = next_delay(reason, self.attempt, self.policy, self.rng)
        self.attempt += 1
        return delay
