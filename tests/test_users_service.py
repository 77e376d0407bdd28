"""AuthService end to end over a real store (SQLite, and MySQL as integration): register, login,
verify, me; same answer and similar time for an unknown email and a wrong password; throttling;
concurrent duplicate registration; open_auth wiring (secret file, store file)."""

from __future__ import annotations

import asyncio
import stat
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from krakenstream.config import Settings, load_settings
from krakenstream.daemon.wiring import open_auth
from krakenstream.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InputError,
    Overloaded,
    PasswordPolicyError,
    Throttled,
)
from krakenstream.users import AuthService, Claims, Role, User

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
    assert claims == Claims(user_id=user.id, email=user.email, expires_at=issued.expires_at,
                            jti=claims.jti, issued_at=claims.issued_at, role=Role.ADMIN)
    assert len(claims.jti) >= 16 and abs(claims.issued_at - time.time()) < 5
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


async def test_unknown_user_costs_what_a_wrong_password_does(tmp_path: Path) -> None:
    """Without the dummy hash an unknown email would be answered without bcrypt's work, so
    faster: each login, of an account or of none, does one bcrypt check at the configured
    cost (the dummy is made at it, when the service opens). Counted, not timed: the times
    side by side are ``bench/responsiveness.py``'s figure."""
    service = await open_auth(make_settings(
        tmp_path, **{"auth.bcrypt_cost": 6, "auth.login_max_failures": 1000}
    ))
    try:
        await service.register("kim@example.com", PASSWORD)
        hashing = service.hasher.queue
        for i in range(3):
            for email in ("kim@example.com", f"nobody{i}@example.com"):
                before = hashing.started
                with pytest.raises(AuthError, match="invalid email or password"):
                    await service.login(email, "wrong password", client="t")
                assert hashing.started == before + 1, email
        dummy = service.hasher._dummy
        assert dummy is not None and dummy.startswith(b"$2b$06$")  # made at the cost, once
    finally:
        await service.close()


# -- roles, registration policy, revocation ---------------------------------------------------


async def test_first_registration_is_admin_and_tokens_carry_the_role(auth: AuthService) -> None:
    admin = await auth.register("boss@example.com", PASSWORD, client="10.0.0.1")
    reader = await auth.register("staff@example.com", PASSWORD, client="10.0.0.2")
    assert (admin.role, reader.role) == (Role.ADMIN, Role.READER)
    token = (await auth.login("staff@example.com", PASSWORD, client="x")).token
    principal = await auth.authorize(auth.verify(token))
    assert principal.role is Role.READER and principal.user_id == reader.id
    with pytest.raises(Forbidden, match="needs an admin account"):
        principal.require_admin("tracking a pair")
    await auth.set_role(reader.id, Role.ADMIN)  # applies at once on this service
    assert (await auth.authorize(auth.verify(token))).is_admin


async def test_closed_registration(tmp_path: Path, backend_env: dict[str, str]) -> None:
    service = await open_auth(make_settings(tmp_path, backend_env,
                                            **{"auth.registration": "closed"}))
    try:
        first = await service.register("founder@example.com", PASSWORD, client="a")
        assert first.role is Role.ADMIN  # an empty store still takes its first account
        calls_before = service.hasher.queue.refused
        with pytest.raises(Forbidden, match="registration is closed") as info:
            await service.register("walk-in@example.com", PASSWORD, client="b")
        assert info.value.hint and "kms user add" in info.value.hint
        assert service.hasher.queue.refused == calls_before
        added = await service.create_user("hired@example.com", PASSWORD)
        assert added.role is Role.READER
        boss = await service.create_user("boss2@example.com", PASSWORD, role=Role.ADMIN)
        assert boss.role is Role.ADMIN
    finally:
        await service.close()


async def test_registrations_are_limited_per_address(tmp_path: Path) -> None:
    service = await open_auth(make_settings(tmp_path, **{"auth.registration_max": 3}))
    try:
        for i in range(2):
            await service.register(f"ok{i}@example.com", PASSWORD, client="198.51.100.9")
        with pytest.raises(Conflict):  # a failed attempt counts too
            await service.register("ok0@example.com", PASSWORD, client="198.51.100.9")
        with pytest.raises(Throttled, match="too many registrations from this address") as info:
            await service.register("more@example.com", PASSWORD, client="198.51.100.9")
        assert 3500 < info.value.retry_after <= 3600
        await service.register("more@example.com", PASSWORD, client="198.51.100.10")
        await service.create_user("admin-made@example.com", PASSWORD)  # not throttled
    finally:
        await service.close()


async def test_a_registration_flood_cannot_starve_a_login(tmp_path: Path) -> None:
    """30 registrations at once on one bcrypt worker with 4 places to wait: those past the
    bound are refused at once (503, Retry-After) instead of queueing, and the login, in its
    own lane, gets through (the order within the queue is test_users_passwords' business)."""
    service = await open_auth(make_settings(tmp_path, **{"auth.hash_queue": 4}))
    service.hasher.queue.workers = 1
    try:
        await service.register("member@example.com", PASSWORD)
        flood = [asyncio.ensure_future(service.register(f"bot{i}@example.com", PASSWORD,
                                                        client=f"203.0.113.{i}"))
                 for i in range(30)]
        await asyncio.sleep(0)  # every registration reaches the queue (or is refused)
        login = asyncio.ensure_future(service.login("member@example.com", PASSWORD, "x"))
        results = await asyncio.gather(*flood, return_exceptions=True)
        assert (await login).user.email == "member@example.com"
        overloaded = [r for r in results if isinstance(r, Overloaded)]
        created = [r for r in results if isinstance(r, User)]
        assert len(created) == 5 and len(overloaded) == 25, results  # 1 running + 4 waiting
        assert all(r.retry_after >= 1 for r in overloaded)
    finally:
        await service.close()


async def test_disabled_account_cannot_log_in_and_its_tokens_stop(auth: AuthService) -> None:
    await auth.register("admin@example.com", PASSWORD)
    user = await auth.register("leaver@example.com", PASSWORD)
    claims = auth.verify((await auth.login("leaver@example.com", PASSWORD, "x")).token)
    await auth.authorize(claims)
    await auth.set_disabled(user.id, True)
    with pytest.raises(AuthError, match="disabled"):
        await auth.authorize(claims)
    with pytest.raises(Forbidden, match="this account is disabled"):
        await auth.login("leaver@example.com", PASSWORD, "x")
    with pytest.raises(AuthError, match="invalid email or password"):  # no hint without it
        await auth.login("leaver@example.com", "wrong password", "x")
    await auth.set_disabled(user.id, False)
    with pytest.raises(AuthError, match="disabled after it was issued"):
        await auth.authorize(claims)  # re-enabling does not bring old tokens back
    # tokens of the second the account was disabled in are void too (iat has whole seconds)
    state = await auth.store.access(user.id, "")
    assert state is not None
    while time.time() < state.tokens_valid_after:  # noqa: ASYNC110 - waits on the clock
        await asyncio.sleep(0.05)
    fresh = await auth.login("leaver@example.com", PASSWORD, "x")
    assert (await auth.authorize(auth.verify(fresh.token))).user_id == user.id


@pytest.mark.slow
async def test_logout_revokes_on_every_service(tmp_path: Path,
                                               backend_env: dict[str, str]) -> None:
    """Two services over one store and one secret stand for two gateways."""
    env = {**backend_env, "KMS_AUTH_SECRET": "s" * 32}
    one = await open_auth(make_settings(tmp_path, env, **{"auth.access_ttl": 0.2}))
    two = await open_auth(make_settings(tmp_path, env, **{"auth.access_ttl": 0.2}))
    try:
        await one.register("admin@example.com", PASSWORD)
        user = await one.register("user@example.com", PASSWORD)
        claims = one.verify((await one.login("user@example.com", PASSWORD, "x")).token)
        other = one.verify((await one.login("user@example.com", PASSWORD, "x")).token)
        await two.authorize(claims)  # seen (and cached) by the other gateway
        await one.logout(claims)
        with pytest.raises(AuthError, match="revoked"):
            await one.authorize(claims)  # at once here
        await refused_within(two, claims, "revoked", 5.0)  # within access_ttl there
        await two.authorize(other)  # the user's other session is untouched
        # disabling through one gateway ends the other session on the other gateway too
        await one.set_disabled(user.id, True)
        await refused_within(two, other, "disabled", 5.0)
        # a deleted account's tokens stop as well
        third = await one.register("third@example.com", PASSWORD)
        token = one.verify((await one.login("third@example.com", PASSWORD, "x")).token)
        await two.authorize(token)
        await one.delete_user(third.id)
        await refused_within(two, token, "no longer exists", 5.0)
    finally:
        await one.close()
        await two.close()


async def refused_within(service: AuthService, claims: Claims, match: str,
                         within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            await service.authorize(claims)
        except AuthError as exc:
            assert match in str(exc)
            return
        assert time.monotonic() < deadline, f"still accepted after {within} s"
        await asyncio.sleep(0.05)
