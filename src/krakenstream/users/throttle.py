"""Login throttling: refuse an email or a client address after too many recent failures;
and the per-address limit on registrations (:class:`RegistrationLimit`).

Pure apart from the clock, which is injected, so tests step time by hand. Each email and each
client address keeps the times of its last ``max_failures`` failures (a sliding window): once
that many fall within ``window`` seconds, further attempts are refused with
:class:`~krakenstream.errors.Throttled` until the oldest of them ages out, without checking the
password (which also spares the CPU a bcrypt run). A success clears the email's record but not
the address's, so an attacker cannot wash an address clean with one account they own.

Attempts still in progress count against the limit too (:meth:`LoginThrottle.begin` reserves
a slot, :meth:`LoginThrottle.release` frees it): otherwise a hundred guesses sent at once would
all pass the check while bcrypt is still busy with the first.

Memory is bounded: keys are cut to 256 characters, and at most ``max_keys`` emails and
addresses are tracked; when full, the one idle longest is forgotten (a flood of fresh keys can
thus evict a counter: the price of a fixed ceiling; the per-address counter still catches a
flood from one address).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import Throttled

DEFAULT_MAX_KEYS = 100_000
#: an email or address longer than this is cut (a megabyte "email" must not cost a megabyte)
KEY_CHARS = 256


@dataclass(frozen=True, slots=True)
class ThrottleStats:
    """Counters for metrics: failures recorded, attempts refused, keys tracked now."""

    failures: int
    throttled: int
    tracked: int


class LoginThrottle:
    """Counts failed logins per email and per client address within a sliding window."""

    def __init__(
        self,
        *,
        max_failures: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if max_failures < 1 or window <= 0 or max_keys < 2:
            raise ValueError("max_failures >= 1, window > 0 and max_keys >= 2 are required")
        self.max_failures = max_failures
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        #: (kind, key) -> times of its most recent failures, oldest first; LRU order
        self._recent: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        #: (kind, key) -> attempts begun and not yet released (bounded by concurrency)
        self._pending: dict[tuple[str, str], int] = {}
        self.failures = 0
        self.throttled = 0

    def _live(self, key: tuple[str, str], now: float) -> deque[float] | None:
        """The key's failures still inside the window (forgetting the key if none are)."""
        times = self._recent.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._recent[key]
            return None
        return times

    @staticmethod
    def _keys(email: str, client: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("email", email[:KEY_CHARS]), ("client", client[:KEY_CHARS])

    def check(self, email: str, client: str) -> None:
        """Raise :class:`Throttled` if this email or this address may not try now."""
        now = self._clock()
        wait = 0.0
        culprit = ""
        for key in self._keys(email, client):
            times = self._live(key, now)
            failed = 0 if times is None else len(times)
            pending = self._pending.get(key, 0)
            if failed + pending < self.max_failures:
                continue
            if times and failed >= self.max_failures:
                remaining = times[0] + self.window - now  # until the oldest failure ages out
            else:
                remaining = 1.0  # full only with attempts in progress: decided in a moment
            if remaining > wait or not culprit:
                wait, culprit = remaining, key[0]
        if culprit:
            self.throttled += 1
            retry_after = max(1, math.ceil(wait))
            what = "this email" if culprit == "email" else "this address"
            raise Throttled(
                f"too many failed logins for {what}; try again in {retry_after} s",
                retry_after=retry_after,
            )

    def begin(self, email: str, client: str) -> None:
        """:meth:`check`, then hold a slot for this attempt until :meth:`release`."""
        self.check(email, client)
        for key in self._keys(email, client):
            self._pending[key] = self._pending.get(key, 0) + 1

    def release(self, email: str, client: str) -> None:
        """The attempt :meth:`begin` started is decided (call it in a ``finally``)."""
        for key in self._keys(email, client):
            left = self._pending.get(key, 0) - 1
            if left > 0:
                self._pending[key] = left
            else:
                self._pending.pop(key, None)

    def failure(self, email: str, client: str) -> None:
        """Record a failed login against both the email and the address."""
        now = self._clock()
        self.failures += 1
        for key in self._keys(email, client):
            times = self._live(key, now)
            if times is None:
                times = self._recent[key] = deque(maxlen=self.max_failures)
            else:
                self._recent.move_to_end(key)
            times.append(now)
        while len(self._recent) > self.max_keys:
            self._recent.popitem(last=False)

    def success(self, email: str) -> None:
        """A correct password: the email's failures are forgiven (the address's are not)."""
        self._recent.pop(self._keys(email, "")[0], None)

    def stats(self) -> ThrottleStats:
        return ThrottleStats(
            failures=self.failures, throttled=self.throttled, tracked=len(self._recent)
        )


class RegistrationLimit:
    """At most ``max_attempts`` registrations per client address within ``window`` seconds.

    Unlike logins, every attempt counts, successful or not: a registration costs a bcrypt run
    whatever its outcome, and a flood of fresh accounts is the abuse. Refused with
    :class:`Throttled` (429, ``Retry-After``) before any hashing. Memory is bounded like
    :class:`LoginThrottle`'s (``max_keys`` addresses, the idlest forgotten first).
    """

    def __init__(
        self,
        *,
        max_attempts: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if max_attempts < 1 or window <= 0 or max_keys < 1:
            raise ValueError("max_attempts >= 1, window > 0 and max_keys >= 1 are required")
        self.max_attempts = max_attempts
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()
        self.throttled = 0

    def attempt(self, client: str) -> None:
        """Count an attempt from ``client``, or raise :class:`Throttled` if it is one too
        many (a refused attempt is not counted: waiting it out works)."""
        key = client[:KEY_CHARS]
        now = self._clock()
        times = self._recent.get(key)
        if times is None:
            times = self._recent[key] = deque(maxlen=self.max_attempts)
        while times and times[0] <= now - self.window:
            times.popleft()
        self._recent.move_to_end(key)
        if len(times) >= self.max_attempts:
            self.throttled += 1
            retry_after = max(1, math.ceil(times[0] + self.window - now))
            raise Throttled(
                f"too many registrations from this address; try again in {retry_after} s",
                retry_after=retry_after,
            )
        times.append(now)
        while len(self._recent) > self.max_keys:
            self._recent.popitem(last=False)
