"""Login throttle, driven by a hand-stepped clock: limits per email and per address, the
sliding window, forgiveness on success, counters, and the memory ceiling."""

from __future__ import annotations

import pytest

from krakenstream.errors import AuthError, Throttled
from krakenstream.users import LoginThrottle, ThrottleStats


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(max_failures: int = 3, window: float = 60, max_keys: int = 1000) -> tuple[
    LoginThrottle, FakeClock
]:
    clock = FakeClock()
    return LoginThrottle(max_failures=max_failures, window=window, clock=clock,
                         max_keys=max_keys), clock


def fail_n(t: LoginThrottle, n: int, email: str = "a@x.org", client: str = "10.0.0.1") -> None:
    for _ in range(n):
        t.check(email, client)
        t.failure(email, client)


def test_allows_up_to_the_limit_then_refuses() -> None:
    t, _ = make(max_failures=3, window=60)
    fail_n(t, 3)
    with pytest.raises(Throttled, match="too many failed logins for this email") as info:
        t.check("a@x.org", "10.0.0.1")
    assert info.value.retry_after == 60
    assert isinstance(info.value, AuthError)
    assert info.value.hint == "wait 60 s, then try again"


def test_sliding_window() -> None:
    t, clock = make(max_failures=3, window=60)
    for _ in range(3):
        t.failure("a@x.org", "c")
        clock.advance(10)  # failures at 1000, 1010, 1020; now 1030
    with pytest.raises(Throttled) as info:
        t.check("a@x.org", "c")
    assert info.value.retry_after == 30  # the first failure ages out at 1060
    clock.advance(29.5)
    with pytest.raises(Throttled) as info:
        t.check("a@x.org", "c")
    assert info.value.retry_after == 1  # rounded up, never 0
    clock.advance(0.5)
    t.check("a@x.org", "c")  # 1060: the oldest failure left the window
    t.failure("a@x.org", "c")  # ... but a new one fills the slot again
    with pytest.raises(Throttled) as info:
        t.check("a@x.org", "c")
    assert info.value.retry_after == 10  # until the failure at 1010 ages out


def test_per_address_across_many_emails() -> None:
    t, _ = make(max_failures=3)
    for i in range(3):
        t.failure(f"user{i}@x.org", "203.0.113.9")
    with pytest.raises(Throttled, match="this address"):
        t.check("fresh@x.org", "203.0.113.9")
    t.check("fresh@x.org", "198.51.100.1")  # another address may still try


def test_per_email_across_many_addresses() -> None:
    t, _ = make(max_failures=3)
    for i in range(3):
        t.failure("target@x.org", f"198.51.100.{i}")
    with pytest.raises(Throttled, match="this email"):
        t.check("target@x.org", "198.51.100.200")
    t.check("other@x.org", "198.51.100.200")


def test_retry_after_is_the_longer_of_the_two() -> None:
    t, clock = make(max_failures=2, window=100)
    t.failure("a@x.org", "c1")
    t.failure("b@x.org", "c2")
    clock.advance(50)
    t.failure("a@x.org", "c2")  # a@: 1000, 1050; c2: 1000, 1050
    t.failure("b@x.org", "c1")  # b@: 1000, 1050; c1: 1000, 1050
    clock.advance(10)
    t.failure("a@x.org", "c3")  # a@: 1050, 1060 (maxlen 2: oldest dropped)
    with pytest.raises(Throttled, match="this email") as info:
        t.check("a@x.org", "c2")
    assert info.value.retry_after == 90  # a@ waits until 1150; c2 only until 1100


def test_success_forgives_the_email_but_not_the_address() -> None:
    t, _ = make(max_failures=3)
    fail_n(t, 2, "me@x.org", "c")
    t.success("me@x.org")
    t.failure("me@x.org", "c")  # the address now has 3 failures, the email only 1
    with pytest.raises(Throttled, match="this address"):
        t.check("me@x.org", "c")
    t.check("me@x.org", "elsewhere")


def test_counters() -> None:
    t, _ = make(max_failures=2)
    assert t.stats() == ThrottleStats(failures=0, throttled=0, tracked=0)
    fail_n(t, 2)
    for _ in range(3):
        with pytest.raises(Throttled):
            t.check("a@x.org", "10.0.0.1")
    assert t.stats() == ThrottleStats(failures=2, throttled=3, tracked=2)
    assert (t.failures, t.throttled) == (2, 3)


def test_expired_keys_are_forgotten() -> None:
    t, clock = make(max_failures=3, window=60)
    fail_n(t, 2)
    assert t.stats().tracked == 2
    clock.advance(61)
    t.check("a@x.org", "10.0.0.1")
    assert t.stats().tracked == 0


def test_memory_is_bounded_and_the_oldest_is_evicted() -> None:
    t, clock = make(max_failures=1, max_keys=10)
    for i in range(100):
        t.failure(f"u{i}@x.org", f"c{i}")
        clock.advance(0.001)
        assert t.stats().tracked <= 10
    t.check("u0@x.org", "c0")  # long evicted
    with pytest.raises(Throttled):
        t.check("u99@x.org", "someone")  # the newest is still there


def test_recent_activity_keeps_a_key_alive() -> None:
    t, _ = make(max_failures=5, max_keys=4)
    t.failure("old@x.org", "c-old")
    t.failure("b@x.org", "c-b")
    t.failure("old@x.org", "c-other")  # touches old@ again: now newer than b@
    t.failure("d@x.org", "c-d")  # 5 keys > 4: the idlest (c-old) goes first, then b@...
    assert t.stats().tracked == 4
    t.failure("old@x.org", "c-other")
    t.failure("old@x.org", "c-other")
    t.failure("old@x.org", "c-other")
    with pytest.raises(Throttled, match="this email"):
        t.check("old@x.org", "new-client")


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        LoginThrottle(max_failures=0, window=60)
    with pytest.raises(ValueError):
        LoginThrottle(max_failures=1, window=0)


def test_attempts_in_progress_count_against_the_limit() -> None:
    t, _ = make(max_failures=3)
    for _ in range(3):
        t.begin("a@x.org", "c")  # three guesses sent at once, none decided yet
    with pytest.raises(Throttled) as info:
        t.begin("a@x.org", "c")
    assert info.value.retry_after == 1
    t.failure("a@x.org", "c")
    t.release("a@x.org", "c")
    t.release("a@x.org", "c")
    t.release("a@x.org", "c")  # two ended without a verdict (e.g. the database was down)
    t.begin("a@x.org", "c")  # 1 failure + 1 in progress < 3
    t.release("a@x.org", "c")
    t.release("a@x.org", "c")  # one release too many is harmless
    t.check("a@x.org", "c")


def test_huge_keys_are_cut() -> None:
    t, _ = make(max_failures=2)
    huge = "x" * 1_000_000
    t.failure(huge + "a", "c1")
    t.failure(huge + "b", "c2")  # the same first 256 characters: the same key
    with pytest.raises(Throttled, match="this email"):
        t.check(huge + "c", "c3")
    assert t.stats().tracked == 3
