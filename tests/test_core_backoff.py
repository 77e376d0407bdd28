"""The one backoff (core/backoff.py): pure, seeded, no clock."""

from __future__ import annotations

import random
from itertools import islice

import pytest

from krakenstream.core.backoff import (
    MAINTENANCE_DELAY,
    BackoffPolicy,
    Reason,
    ReconnectSchedule,
    backoff,
    exponential_ceiling,
    next_delay,
)
from krakenstream.errors import InputError


def test_backoff_generator_is_capped_full_jitter() -> None:
    delays = list(islice(backoff(0.5, 8.0, rng=random.Random(1)), 200))
    ceilings = [min(8.0, 0.5 * 2**n) for n in range(200)]
    assert all(0.0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    # jitter: later delays spread over [0, cap], not all at the cap
    tail = delays[10:]
    assert max(tail) > 6.0 and min(tail) < 2.0
    assert max(delays) <= 8.0


def test_backoff_generator_is_reproducible_with_a_seed() -> None:
    a = list(islice(backoff(1.0, 30.0, rng=random.Random(42)), 20))
    b = list(islice(backoff(1.0, 30.0, rng=random.Random(42)), 20))
    assert a == b


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(InputError):
        next(backoff(-1.0, 10.0, rng=random.Random(0)))
    with pytest.raises(InputError):
        BackoffPolicy(initial=1.0, maximum=10.0, factor=0.5)


def test_ceiling_grows_then_caps_without_overflow() -> None:
    policy = BackoffPolicy(initial=0.5, maximum=60.0)
    assert [exponential_ceiling(policy, n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert exponential_ceiling(policy, 7) == 60.0
    assert exponential_ceiling(policy, 100_000) == 60.0


def test_plain_drop_is_retried_at_once_a_few_times_then_backs_off() -> None:
    policy = BackoffPolicy(initial=1.0, maximum=60.0, immediate_retries=3)
    rng = random.Random(7)
    assert [next_delay(Reason.DROPPED, n, policy, rng) for n in range(3)] == [0.0, 0.0, 0.0]
    later = [next_delay(Reason.DROPPED, n, policy, rng) for n in range(3, 12)]
    assert all(0.0 <= d <= exponential_ceiling(policy, n - 3) for n, d in
               zip(range(3, 12), later, strict=True))
    assert any(d > 0 for d in later)


@pytest.mark.parametrize("reason", [Reason.STALE, Reason.OVERFLOW, Reason.CONNECT_FAILED,
                                    Reason.PROTOCOL])
def test_other_reasons_back_off_from_the_first_retry(reason: Reason) -> None:
    policy = BackoffPolicy(initial=2.0, maximum=10.0)
    rng = random.Random(3)
    delays = [next_delay(reason, n, policy, rng) for n in range(50)]
    assert any(d > 0 for d in delays[:3])
    assert all(0.0 <= d <= 10.0 for d in delays)


def test_maintenance_never_retries_faster_than_five_seconds() -> None:
    policy = BackoffPolicy(initial=0.0, maximum=0.0)
    rng = random.Random(0)
    for n in range(20):
        assert next_delay(Reason.MAINTENANCE, n, policy, rng) >= MAINTENANCE_DELAY == 5.0
    big = BackoffPolicy(initial=1.0, maximum=60.0)
    delays = [next_delay(Reason.MAINTENANCE, n, big, rng) for n in range(20)]
    assert min(delays) >= 5.0 and max(delays) <= 60.0 and max(delays) > 5.0


def test_schedule_counts_attempts_and_forgets_them_after_a_stable_connection() -> None:
    sched = ReconnectSchedule(BackoffPolicy(initial=1.0, maximum=4.0), random.Random(5),
                              stable_after=10.0)
    assert [sched.failed(Reason.DROPPED) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert sched.attempt == 3
    sched.connected_for(2.0)  # too short to count as healthy: keep backing off
    assert sched.attempt == 3
    assert 0.0 <= sched.failed(Reason.DROPPED) <= 1.0
    sched.connected_for(30.0)
    assert sched.attempt == 0
    assert sched.failed(Reason.DROPPED) == 0.0


def test_backoff_starts_at_the_initial_ceiling_and_grows_past_it() -> None:
    """What the Kafka bus and the client rely on (their own copy was tested this way)."""
    delays = list(islice(backoff(0.2, 5.0, rng=random.Random(11)), 50))
    assert all(0.0 <= d <= 5.0 for d in delays)
    assert all(d <= 0.2 for d in delays[:1])
    assert max(delays[10:]) > 0.2  # grows past the initial delay
