"""Password policy (short, too long in bytes, Unicode) and bcrypt hashing off the event loop."""

from __future__ import annotations

import asyncio
import time

import bcrypt
import pytest

from krakenstream.errors import InputError, PasswordPolicyError
from krakenstream.users import PasswordHasher, check_password_policy
from krakenstream.users.passwords import MAX_PASSWORD_BYTES, password_bytes


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
    """A ticker keeps running while bcrypt works: the work is in threads, not on the loop."""
    hasher = PasswordHasher(10)  # ~50-100 ms a hash: a blocked loop would show such gaps
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    hashed = await hasher.hash("a long enough password")
    assert await hasher.verify("a long enough password", hashed)
    elapsed = time.perf_counter() - started
    done.set()
    await tick
    assert elapsed > 0.04, "cost 10 should take tens of milliseconds"
    assert len(gaps) > 5
    # on the loop, one gap would span a whole hash (about half of elapsed)
    assert max(gaps) < elapsed / 4, (max(gaps), elapsed)
