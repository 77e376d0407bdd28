"""``daemon/gateway/admin.py``: ``/api/users`` for admins: list, add (any registration
policy), promote, demote, disable, enable, delete; a reader may do none of it; the last
enabled admin stays one (409). Who may do what elsewhere is ``test_gateway_auth.py``'s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway_support import PASSWORD, Stack, login, settings_for, stack
from test_gateway_auth import ADMIN, READER, admin_and_reader, bearer


@pytest.fixture
async def gw(kms_home: Path) -> AsyncIterator[Stack]:
    async with stack(settings_for(kms_home), roles=("gateway",)) as s:
        yield s


async def test_admins_manage_accounts(gw: Stack) -> None:
    c = gw.client
    admin, reader = await admin_and_reader(gw)
    r = await c.get("/api/users", headers=bearer(admin))
    assert r.status_code == 200
    users = r.json()["users"]
    assert [(u["email"], u["role"], u["disabled"]) for u in users] == [
        (ADMIN, "admin", False), (READER, "reader", False)]
    admin_id, reader_id = users[0]["id"], users[1]["id"]
    # add an account (any registration policy), as a reader or an admin
    r = await c.post("/api/users", headers=bearer(admin),
                     json={"email": "new@example.com", "password": PASSWORD})
    assert r.status_code == 201 and r.json()["role"] == "reader"
    new_id = r.json()["id"]
    r = await c.post("/api/users", headers=bearer(admin),
                     json={"email": "boss@example.com", "password": PASSWORD, "role": "admin"})
    assert r.status_code == 201 and r.json()["role"] == "admin"
    r = await c.post("/api/users", headers=bearer(admin),
                     json={"email": "new@example.com", "password": PASSWORD})
    assert r.status_code == 409
    r = await c.post("/api/users", headers=bearer(admin),
                     json={"email": "x@example.com", "password": PASSWORD, "role": "root"})
    assert r.status_code == 422
    # promote, demote, disable, enable, delete
    for action, field, value in [("promote", "role", "admin"), ("demote", "role", "reader"),
                                 ("disable", "disabled", True), ("enable", "disabled", False)]:
        r = await c.post(f"/api/users/{new_id}/{action}", headers=bearer(admin))
        assert r.status_code == 200 and r.json()[field] == value, (action, r.text)
    r = await c.delete(f"/api/users/{new_id}", headers=bearer(admin))
    assert r.status_code == 200 and r.json() == {"id": new_id, "deleted": True}
    assert (await c.delete(f"/api/users/{new_id}", headers=bearer(admin))).status_code == 404
    assert (await c.post("/api/users/987654/disable", headers=bearer(admin))).status_code == 404
    assert (await c.post("/api/users/abc/disable", headers=bearer(admin))).status_code == 422
    # a reader may do none of it
    for method, path in [("GET", "/api/users"), ("POST", "/api/users"),
                         ("POST", f"/api/users/{reader_id}/promote"),
                         ("POST", f"/api/users/{admin_id}/disable"),
                         ("DELETE", f"/api/users/{admin_id}")]:
        r = await c.request(method, path, headers=bearer(reader),
                            json={"email": "y@example.com", "password": PASSWORD})
        assert r.status_code == 403 and r.json()["code"] == "forbidden", (method, path)
    # the last enabled admin stays one
    r = await c.post(f"/api/users/{users[0]['id']}/demote", headers=bearer(admin))
    assert r.status_code == 200  # boss@example.com is an admin too
    boss = await login(c, "boss@example.com", register=False)
    r = await c.post(f"/api/users/{admin_id}/promote", headers=bearer(boss))
    r = await c.post(f"/api/users/{admin_id}/demote", headers=bearer(boss))
    me = (await c.get("/api/users/me", headers=bearer(boss))).json()
    r = await c.post(f"/api/users/{me['id']}/demote", headers=bearer(boss))
    assert r.status_code == 409 and "last enabled admin" in r.json()["error"]
