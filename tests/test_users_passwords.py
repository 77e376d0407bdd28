"""Password policy (short, too long in bytes, Unicode) and bcrypt hashing off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import bcrypt
import pytest

from krakenstream.errors import InputError, Overloaded, PasswordPolicyError
from krakenstream.users import Lane, PasswordHasher, check_password_policy
from krakenstream.users.passwords import MAX_PASSWORD_BYTES, HashQueue, password_bytes


@pytest.mark.parametrize("password", ["", "a", "seven77", "ü" * 7])
def test_too_short(password: str) -> None:
    with pytest.raises(PasswordPolicyError, match="too short: .* at least 8"):
        check_password_policy(password, min_length=8)


def test_policy_error_is_an_input_error() -> None:
    assert issubclass(PasswordPolicyError, InputError)


@pytest.mark.parametrize("password", [
    "eight888", "ü" * 8, "пароль12", "密码密码密码密码", "🔑" * 8, "x" * MAX_PASSWORD_BYTES,
    "é" * 36,  # 72 bytes exactly
])
def test_acceptable(password: str) -> None:
    check_password_policy(password, min_length=8)


@pytest.mark.parametrize("password, size", [
    ("x" * 73, 73),
    ("é" * 37, 74),  # 37 characters, but 2 bytes each
    ("🔑" * 19, 76),  # 19 characters, 4 bytes each
    ("a" * 71 + "ü", 73),
])
def test_over_72_bytes_is_refused_with_the_byte_count(password: str, size: int) -> None:
    with pytest.raises(PasswordPolicyError, match=f"too long: {size} bytes in UTF-8, at most 72"):
        check_password_policy(password, min_length=8)


def test_not_a_string() -> None:
    with pytest.raises(PasswordPolicyError, match="string"):
        check_password_policy(12345678, min_length=8)  # type: ignore[arg-type]


async def test_a_lone_surrogate_is_refused_and_never_matches() -> None:
    password = "\ud800 correct horse"  # a str that no UTF-8 encoder takes
    with pytest.raises(PasswordPolicyError, match="surrogate"):
        check_password_policy(password, min_length=8)
    hasher = PasswordHasher(4)
    hashed = await hasher.hash("\ufffd correct horse")
    assert not await hasher.verify(password, hashed)
    assert not await hasher.verify(password, None)


def test_unicode_is_normalised() -> None:
    assert password_bytes("caf\u00e9") == password_bytes("cafe\u0301")
    assert password_bytes("\ufb01x") == b"fix"  # NFKC: the ligature is two letters


async def test_hash_and_verify() -> None:
    hasher = PasswordHasher(4)
    hashed = await hasher.hash("correct horse")
    assert hashed.startswith("$2b$04$") and len(hashed) == 60
    assert await hasher.verify("correct horse", hashed)
    assert not await hasher.verify("correct horsE", hashed)
    assert not await hasher.verify("correct horse ", hashed)
    assert await hasher.hash("correct horse") != hashed  # salted


async def test_verify_unicode_in_either_normal_form() -> None:
    hasher = PasswordHasher(4)
    hashed = await hasher.hash("pässwörd-caf\u00e9")
    assert await hasher.verify("pa\u0308sswo\u0308rd-cafe\u0301", hashed)


async def test_nothing_is_truncated() -> None:
    """Two passwords sharing their first 72 bytes do not match each other."""
    hasher = PasswordHasher(4)
    base = "p" * MAX_PASSWORD_BYTES
    hashed = await hasher.hash(base)
    assert not await hasher.verify(base + "extra", hashed)
    with pytest.raises(PasswordPolicyError, match="too long"):
        await hasher.hash(base + "x")


async def test_unknown_account_and_malformed_hash_never_match() -> None:
    hasher = PasswordHasher(4)
    assert not await hasher.verify("anything", None)
    assert not await hasher.verify("anything", "not-a-bcrypt-hash")
    assert not await hasher.verify("anything", "")


async def test_cost_is_the_configured_one() -> None:
    hashed = await PasswordHasher(5).hash("some password")
    assert hashed.startswith("$2b$05$")
    assert bcrypt.checkpw(b"some password", hashed.encode())
    with pytest.raises(ValueError):
        PasswordHasher(3)


async def test_hashing_does_not_block_the_event_loop() -> None:
    """Other coroutines run while bcrypt works: the work is in threads, not on the loop.
    Proven by order: a ticker that only yields turns many times between a hash's start and
    its end (on the loop it could not turn once). How long the loop's longest pause is
    while hashing is ``bench/responsiveness.py``'s figure."""
    hasher = PasswordHasher(10)
    turns = 0
    hashing = asyncio.Event()
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal turns
        await hashing.wait()
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    tick = asyncio.create_task(ticker())

    async def hash_then_verify() -> bool:
        hashing.set()  # the ticker is ready to run from here on
        hashed = await hasher.hash("a long enough password")
        return await hasher.verify("a long enough password", hashed)

    try:
        assert await hash_then_verify()
        during = turns
    finally:
        done.set()
        await tick
    assert hasher.queue.started == 2 and hasher.queue.running == 0
    assert during >= 10, during


# -- the hash queue: logins before registrations, bounded -------------------------------------


class Gate:
    """A blocking function for worker threads that records the order runs start in and
    holds each until the test opens the gate."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.opened = threading.Event()

    def run(self, name: str) -> str:
        self.started.append(name)
        self.opened.wait(10)
        return name


async def _until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_logins_go_before_queued_registrations() -> None:
    queue = HashQueue(workers=1, limit=10)
    gate = Gate()
    first = asyncio.create_task(queue.run(Lane.SIGNUP, gate.run, "signup-0"))
    await _until(lambda: gate.started == ["signup-0"])
    signups = [asyncio.create_task(queue.run(Lane.SIGNUP, gate.run, f"signup-{i}"))
               for i in range(1, 4)]
    await _until(lambda: queue.waiting(Lane.SIGNUP) == 3)
    login = asyncio.create_task(queue.run(Lane.LOGIN, gate.run, "login"))
    await _until(lambda: queue.waiting(Lane.LOGIN) == 1)
    gate.opened.set()
    assert await asyncio.gather(first, login, *signups)
    # the login overtook every registration that was waiting before it
    assert gate.started == ["signup-0", "login", "signup-1", "signup-2", "signup-3"]


async def test_a_full_lane_is_refused_at_once_with_retry_after() -> None:
    queue = HashQueue(workers=1, limit=2)
    gate = Gate()
    running = asyncio.create_task(queue.run(Lane.SIGNUP, gate.run, "running"))
    await _until(lambda: gate.started == ["running"])
    waiting = [asyncio.create_task(queue.run(Lane.SIGNUP, gate.run, f"w{i}")) for i in range(2)]
    await _until(lambda: queue.waiting(Lane.SIGNUP) == 2)
    with pytest.raises(Overloaded, match="busy hashing passwords") as info:
        await queue.run(Lane.SIGNUP, gate.run, "refused")
    assert info.value.retry_after >= 1 and queue.refused[Lane.SIGNUP] == 1
    # the login lane is separate: a login still queues while registrations are refused
    login = asyncio.create_task(queue.run(Lane.LOGIN, gate.run, "login"))
    await _until(lambda: queue.waiting(Lane.LOGIN) == 1)
    gate.opened.set()
    await asyncio.gather(running, login, *waiting)
    assert "refused" not in gate.started and gate.started[1] == "login"


async def test_a_cancelled_waiter_leaks_no_worker() -> None:
    queue = HashQueue(workers=1, limit=5)
    gate = Gate()
    running = asyncio.create_task(queue.run(Lane.LOGIN, gate.run, "running"))
    await _until(lambda: gate.started == ["running"])
    given_up = asyncio.create_task(queue.run(Lane.LOGIN, gate.run, "given-up"))
    after = asyncio.create_task(queue.run(Lane.LOGIN, gate.run, "after"))
    await _until(lambda: queue.waiting(Lane.LOGIN) == 2)
    given_up.cancel()
    gate.opened.set()
    assert await running == "running" and await after == "after"
    assert gate.started == ["running", "after"]
    # and the worker is free again
    assert await queue.run(Lane.SIGNUP, gate.run, "later") == "later"


async def test_hasher_registrations_use_the_signup_lane() -> None:
    hasher = PasswordHasher(4, workers=1, queue_limit=0)  # nothing may wait
    gate = Gate()
    blocker = asyncio.create_task(hasher.queue.run(Lane.LOGIN, gate.run, "busy"))
    await _until(lambda: gate.started == ["busy"])
    with pytest.raises(Overloaded):
        await hasher.hash("a password", Lane.SIGNUP)
    with pytest.raises(Overloaded):
        await hasher.verify("a password", None)
    gate.opened.set()
    await blocker
    assert bcrypt.checkpw(b"a password", (await hasher.hash("a password")).encode())
