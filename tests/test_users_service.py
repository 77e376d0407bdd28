"""AuthService end to end over a real store (SQLite, and MySQL as integration): register, login,
verify, me; same answer and similar time for an unknown email and a wrong password; throttling;
concurrent duplicate registration; open_auth wiring (secret file, store file)."""

from __future__ import annotations

import asyncio
import stat
import statistics
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from krakenstream.config import Settings, load_settings
from krakenstream.daemon.wiring import open_auth
from krakenstream.errors import AuthError, Conflict, InputError, PasswordPolicyError, Throttled
from krakenstream.users import AuthService, Claims, User

PASSWORD = "correct horse battery"


def make_settings(home: Path, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    return load_settings(
        env={"KMS_HOME": str(home), **(env or {})},
        overrides={"auth.bcrypt_cost": 4, **overrides},
    )


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.integration)])
def backend_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "sqlite":
        return {}
    url: str = request.getfixturevalue("mysql_url")
    return {"KMS_USERS_BACKEND": "mysql", "KMS_MYSQL_URL": url}


@pytest.fixture
async def auth(tmp_path: Path, backend_env: dict[str, str]) -> AsyncIterator[AuthService]:
    settings = make_settings(tmp_path, backend_env, **{"auth.login_max_failures": 3})
    service = await open_auth(settings)
    try:
        yield service
    finally:
        await service.close()


async def test_register_login_verify_me(auth: AuthService) -> None:
    user = await auth.register("  Alice@Example.com ", PASSWORD)
    assert user.email == "Alice@example.com"
    issued = await auth.login("alice@example.COM", PASSWORD, client="127.0.0.1")
    assert issued.token_type == "bearer"
    assert issued.user == user
    assert abs(issued.expires_at.timestamp() - (time.time() + 86_400)) < 5
    claims = auth.verify(issued.token)
    assert claims == Claims(user_id=user.id, email=user.email, expires_at=issued.expires_at)
    assert await auth.me(claims) == user


async def test_register_errors(auth: AuthService) -> None:
    await auth.register("bob@example.com", PASSWORD)
    with pytest.raises(Conflict, match="already registered"):
        await auth.register("BOB@example.com", "another password")
    with pytest.raises(InputError, match="invalid email"):
        await auth.register("bob at example.com", PASSWORD)
    with pytest.raises(PasswordPolicyError, match="too short"):
        await auth.register("carol@example.com", "short")
    with pytest.raises(PasswordPolicyError, match="too long"):
        await auth.register("carol@example.com", "é" * 40)
    # a refused registration left nothing behind
    await auth.register("carol@example.com", PASSWORD)


async def test_unknown_user_and_wrong_password_look_the_same(auth: AuthService) -> None:
    await auth.register("dave@example.com", PASSWORD)
    with pytest.raises(AuthError) as wrong:
        await auth.login("dave@example.com", "not the password", client="a")
    with pytest.raises(AuthError) as unknown:
        await auth.login("nobody@example.com", PASSWORD, client="b")
    with pytest.raises(AuthError) as malformed:
        await auth.login("not an email", PASSWORD, client="c")
    assert type(wrong.value) is type(unknown.value) is type(malformed.value) is AuthError
    assert str(wrong.value) == str(unknown.value) == str(malformed.value) == (
        "invalid email or password"
    )


async def test_login_with_an_overlong_password_is_just_wrong(auth: AuthService) -> None:
    await auth.register("erin@example.com", "p" * 72)
    with pytest.raises(AuthError, match="invalid email or password"):
        await auth.login("erin@example.com", "p" * 72 + "tail", client="x")
    assert (await auth.login("erin@example.com", "p" * 72, client="x")).user.email


async def test_throttled_even_with_the_right_password(auth: AuthService) -> None:
    await auth.register("frank@example.com", PASSWORD)
    for _ in range(3):
        with pytest.raises(AuthError, match="invalid"):
            await auth.login("frank@example.com", "wrong password", client="198.51.100.7")
    with pytest.raises(Throttled) as info:
        await auth.login("FRANK@example.com", PASSWORD, client="203.0.113.1")
    assert 0 < info.value.retry_after <= 300
    assert auth.throttle.stats().failures == 3 and auth.throttle.stats().throttled == 1


async def test_a_burst_of_guesses_gets_only_the_allowed_tries(auth: AuthService) -> None:
    """Guesses sent at once count while bcrypt is busy: 3 allowed means 3 checked."""
    await auth.register("burst@example.com", PASSWORD)
    results = await asyncio.gather(
        *(auth.login("burst@example.com", f"guess {i}", client=f"10.0.0.{i}") for i in range(10)),
        return_exceptions=True,
    )
    throttled = [r for r in results if isinstance(r, Throttled)]
    checked = [r for r in results if type(r) is AuthError]
    assert len(checked) == 3 and len(throttled) == 7, results
    assert auth.throttle.stats().failures == 3


async def test_success_resets_the_email(auth: AuthService) -> None:
    await auth.register("gina@example.com", PASSWORD)
    for round_ in range(3):
        for _ in range(2):
            with pytest.raises(AuthError):
                await auth.login("gina@example.com", "wrong password", client=f"c{round_}")
        await auth.login("gina@example.com", PASSWORD, client=f"c{round_}")


async def test_address_throttled_across_emails(auth: AuthService) -> None:
    await auth.register("hank@example.com", PASSWORD)
    for i in range(3):
        with pytest.raises(AuthError):
            await auth.login(f"guess{i}@example.com", PASSWORD, client="192.0.2.66")
    with pytest.raises(Throttled, match="this address"):
        await auth.login("hank@example.com", PASSWORD, client="192.0.2.66")
    await auth.login("hank@example.com", PASSWORD, client="192.0.2.67")


async def test_concurrent_duplicate_registration(auth: AuthService) -> None:
    results = await asyncio.gather(
        auth.register("race@example.com", PASSWORD),
        auth.register("Race@Example.com", "another password"),
        return_exceptions=True,
    )
    users = [r for r in results if isinstance(r, User)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(users) == 1 and len(conflicts) == 1, results
    # exactly the winner's password works
    winner_password = PASSWORD if results[0] is users[0] else "another password"
    assert (await auth.login("race@example.com", winner_password, client="x")).user == users[0]


async def test_me_for_a_vanished_account(auth: AuthService) -> None:
    claims = Claims(user_id=987_654, email="ghost@example.com", expires_at=datetime.now(UTC))
    with pytest.raises(AuthError, match="no longer exists"):
        await auth.me(claims)


async def test_tokens_of_another_instance_with_another_secret_fail(tmp_path: Path) -> None:
    one = await open_auth(make_settings(tmp_path / "one"))
    two = await open_auth(make_settings(tmp_path / "two"))
    try:
        await one.register("ivy@example.com", PASSWORD)
        token = (await one.login("ivy@example.com", PASSWORD, client="x")).token
        with pytest.raises(AuthError, match="signature is invalid"):
            two.verify(token)
    finally:
        await one.close()
        await two.close()


async def test_open_auth_files_and_secret_reuse(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = await open_auth(make_settings(home))
    try:
        await first.register("jane@example.com", PASSWORD)
        token = (await first.login("jane@example.com", PASSWORD, client="x")).token
    finally:
        await first.close()
    assert stat.S_IMODE((home / "secret").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "users.sqlite3").stat().st_mode) == 0o600
    second = await open_auth(make_settings(home))  # a restart: same secret, same users
    try:
        claims = second.verify(token)
        assert (await second.me(claims)).email == "jane@example.com"
    finally:
        await second.close()


async def test_unknown_user_costs_about_a_wrong_password(tmp_path: Path) -> None:
    """Timing: without the dummy hash an unknown email would answer ~20x faster at cost 6."""
    service = await open_auth(make_settings(
        tmp_path, **{"auth.bcrypt_cost": 6, "auth.login_max_failures": 1000}
    ))
    try:
        await service.register("kim@example.com", PASSWORD)

        async def timed(email: str) -> float:
            started = time.perf_counter()
            with pytest.raises(AuthError):
                await service.login(email, "wrong password", client="t")
            return time.perf_counter() - started

        wrong: list[float] = []
        unknown: list[float] = []
        for i in range(12):
            wrong.append(await timed("kim@example.com"))
            unknown.append(await timed(f"nobody{i}@example.com"))
        ratio = statistics.median(unknown) / statistics.median(wrong)
        assert 0.5 < ratio < 2.0, (statistics.median(unknown), statistics.median(wrong))
    finally:
        await service.close()
