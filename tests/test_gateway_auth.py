"""Who may do what, over HTTP: the registration policy, as the gateway answers it (in-process,
on the embedded stack, no exchange needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway_support import PASSWORD, Stack, settings_for, stack


@pytest.fixture
async def gw(kms_home: Path) -> AsyncIterator[Stack]:
    async with stack(settings_for(kms_home), roles=("gateway",)) as s:
        yield s


async def register(s: Stack, email: str, password: str = PASSWORD) -> tuple[int, dict[str, str]]:
    r = await s.client.post("/api/users/register", json={"email": email, "password": password})
    return r.status_code, r.json()


async def test_closed_registration_is_403_after_the_first_account(kms_home: Path) -> None:
    settings = settings_for(kms_home, KMS_AUTH_REGISTRATION="closed")
    async with stack(settings, roles=("gateway",)) as s:
        status, body = await register(s, "founder@example.com")
        assert status == 201
        r = await s.client.post("/api/users/register",
                                json={"email": "walk-in@example.com", "password": PASSWORD})
        assert r.status_code == 403
        assert r.json() == {"error": "registration is closed: only an admin creates accounts",
                            "code": "forbidden", "hint": "ask an admin to run: kms user add EMAIL"}
