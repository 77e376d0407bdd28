"""Scenario: the forged-token set against a real daemon (the local simulator behind it), over
HTTP and the WebSocket.

Every token an attacker or a stale client could hold is refused: ``alg: none`` (unsigned, and
with a signature), HS256 signed with a wrong secret, an RSA public key (PEM and DER) used as
the HMAC secret, another algorithm, tokens signed with the daemon's own secret but expired,
not valid yet, for another audience or issuer, a payload swapped under a real signature, a
real token cut short, garbage, a logged-out (revoked) token, the tokens of a disabled and of
a deleted account. Each is asked of three HTTP routes (a read, ``/api/users/me``, an admin's
``POST /api/pairs``) and offered to ``/api/stream`` the three ways a client can (header,
``kms.bearer`` subprotocol, ``?token=``): every HTTP answer is a 401 JSON error, every stream
is closed with 4401 (:data:`krakenstream.wire.BAD_TOKEN`). A reader's valid token is a 403
JSON error on the admin routes (tracking, untracking a pair, listing accounts), and an open
stream whose token is then logged out, or whose account is then disabled, is closed with
4403 (:data:`krakenstream.wire.TOKEN_REVOKED`). No answer is a 5xx.

The token constructions reuse the unit tests' (``tests/test_users_tokens.py``: ``forge``, the
public key) and the library's own :class:`~krakenstream.users.TokenCodec` with a shifted clock
or other claims; those tests check the codec alone, this one the daemon end to end.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from cli_support import PASSWORD, LiveDaemon
from krakenstream.users import TokenCodec, User
from krakenstream.wire import BAD_TOKEN, BEARER_SUBPROTOCOL, TOKEN_REVOKED
from test_users_tokens import forge

from .conftest import Figures, rss_mb

pytestmark = [pytest.mark.reliability]

ADMIN = "admin@example.com"
READER = "reader@example.com"
#: the routes each forged token is asked of: a read, who-am-I, an admin's write
ROUTES = (("GET", "/api/analysis/latest/ETH-USD", None), ("GET", "/api/users/me", None),
          ("POST", "/api/pairs", {"pair": "BTC/USD"}))
#: the admin-only routes a reader's valid token is refused on
ADMIN_ROUTES = (("POST", "/api/pairs", {"pair": "BTC/USD"}), ("DELETE", "/api/pairs/ETH-USD", None),
                ("GET", "/api/users", None), ("POST", "/api/users",
                                              {"email": "x@example.com", "password": PASSWORD}))


def _rsa_public() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    info = serialization.PublicFormat.SubjectPublicKeyInfo
    return (key.public_bytes(serialization.Encoding.PEM, info),
            key.public_bytes(serialization.Encoding.DER, info))


def _swap_payload(token: str, **changes: Any) -> str:
    """``token`` with its payload changed and its signature kept (a privilege escalation)."""
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{body}.{sig}"


def forged_set(secret: bytes, admin: User, admin_token: str) -> dict[str, str]:
    """Name → a token the daemon must refuse (with 401 / 4401); the admin's identity in each,
    so only the forgery stands between it and everything."""
    now = int(time.time())
    claims = {"sub": str(admin.id), "email": admin.email, "iat": now, "nbf": now,
              "exp": now + 600, "iss": "krakenstream", "aud": "krakenstream",
              "jti": secrets.token_urlsafe(16)}
    pem, der = _rsa_public()
    hs256 = {"alg": "HS256", "typ": "JWT"}

    def codec(**kw: Any) -> TokenCodec:
        params: dict[str, Any] = {"ttl": 3600, "issuer": "krakenstream",
                                  "audience": "krakenstream"}
        params.update(kw)
        return TokenCodec(secret, **params)

    return {
        "alg none, unsigned": forge({"alg": "none", "typ": "JWT"}, claims, None),
        "alg None, signed with the secret": forge({"alg": "None", "typ": "JWT"}, claims, secret),
        "HS256, a wrong secret": forge(hs256, claims, secrets.token_bytes(32)),
        "HS256, a PEM public key as secret": forge(hs256, claims, pem),
        "HS256, a DER public key as secret": forge(hs256, claims, der),
        "RS256 header, HMAC signature": forge({"alg": "RS256", "typ": "JWT"}, claims, pem),
        "expired": codec(clock=lambda: time.time() - 3600 - 120).issue(admin).token,
        "not valid yet": codec(clock=lambda: time.time() + 600).issue(admin).token,
        "nbf in the future": forge(hs256, {**claims, "nbf": now + 600}, secret),
        "another audience": codec(audience="someone-else").issue(admin).token,
        "another issuer": codec(issuer="evil").issue(admin).token,
        "payload swapped under a real signature": _swap_payload(admin_token, sub="999999"),
        "truncated": admin_token[:-12],
        "signature removed": admin_token.rpartition(".")[0] + ".",
        "garbage": "not-a-token",
        "three dots of garbage": "a.b.c",
        "nested header": base64.urlsafe_b64encode(b"[" * 3000).rstrip(b"=").decode()
        + ".e30.c2ln",
    }


class Tally:
    """The answers: statuses, close codes, and anything a scenario must not see."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.closes: Counter[int] = Counter()
        self.wrong: list[str] = []

    def http(self, name: str, r: httpx.Response, want: int) -> None:
        self.statuses[r.status_code] += 1
        body: Any = None
        if r.headers.get("content-type", "").startswith("application/json"):
            body = r.json()
        if r.status_code != want or not isinstance(body, dict) or "error" not in body:
            self.wrong.append(f"{name}: {r.request.method} {r.request.url.path} → "
                              f"{r.status_code} {r.text[:200]}")

    def close(self, name: str, code: int | None, want: int) -> None:
        self.closes[code or 0] += 1
        if code != want:
            self.wrong.append(f"{name}: stream closed with {code}, not {want}")


async def ws_close_code(url: str, token: str, way: str, *, opened: asyncio.Event | None = None,
                        within: float = 10) -> int | None:
    """The close code a stream ends with, the token offered ``way``; ``opened`` is set once
    the stream sends its first message (it was accepted)."""
    headers: dict[str, str] = {}
    subprotocols: list[Any] | None = None
    if way == "header":
        headers["Authorization"] = f"Bearer {token}"
    elif way == "subprotocol":
        subprotocols = [BEARER_SUBPROTOCOL, token]
    else:
        url += "?" + httpx.QueryParams({"token": token}).__str__()
    try:
        async with asyncio.timeout(within):
            async with connect(url, additional_headers=headers, subprotocols=subprotocols,
                               open_timeout=within) as ws:
                while True:
                    await ws.recv()
                    if opened is not None:
                        opened.set()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None
    except Exception as exc:  # a refused handshake: counted as no close code
        if "HTTP 5" in str(exc):
            raise AssertionError(f"the handshake got a 5xx: {exc}") from exc
        return None


async def _stream_closed_on_revoke(daemon: LiveDaemon, token: str, revoke: Any) -> int | None:
    """Open a stream with ``token``, wait until it has a snapshot, call ``revoke()``, and
    return the stream's close code."""
    opened = asyncio.Event()
    ws_url = daemon.url.replace("http", "ws") + "/api/stream/ETH-USD"
    task = asyncio.create_task(ws_close_code(ws_url, token, "header", opened=opened, within=30))
    async with asyncio.timeout(20):
        await opened.wait()
    await revoke()
    return await task


async def _scenario(d: LiveDaemon, figures: Figures, secret: bytes) -> Tally:
    tally = Tally()
    ws_url = d.url.replace("http", "ws") + "/api/stream/ETH-USD"
    async with httpx.AsyncClient(base_url=d.url, timeout=10) as client:
        async def login(email: str) -> str:
            r = await client.post("/api/users/login", json={"email": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            token: str = r.json()["token"]
            return token

        for email in (ADMIN, READER, "gone@example.com", "off@example.com"):
            r = await client.post("/api/users/register",
                                  json={"email": email, "password": PASSWORD})
            assert r.status_code == 201, r.text
        admin_token = await login(ADMIN)
        bearer = {"Authorization": f"Bearer {admin_token}"}
        me = (await client.get("/api/users/me", headers=bearer)).json()
        assert me["role"] == "admin"
        admin = User(id=me["id"], email=me["email"], created_at=datetime.now(UTC))
        users = {u["email"]: u["id"] for u in
                 (await client.get("/api/users", headers=bearer)).json()["users"]}

        # tokens that were good until something happened to them
        revoked = await login(ADMIN)
        r = await client.post("/api/users/logout", headers={"Authorization": f"Bearer {revoked}"})
        assert r.status_code == 200, r.text
        gone, off = await login("gone@example.com"), await login("off@example.com")
        r = await client.delete(f"/api/users/{users['gone@example.com']}", headers=bearer)
        assert r.status_code == 200, r.text
        r = await client.post(f"/api/users/{users['off@example.com']}/disable", headers=bearer)
        assert r.status_code == 200, r.text

        tokens = forged_set(secret, admin, admin_token)
        tokens |= {"logged out (revoked jti)": revoked, "a deleted account's": gone,
                   "a disabled account's": off}
        for name, token in tokens.items():
            for method, path, body in ROUTES:
                r = await client.request(method, path, json=body,
                                         headers={"Authorization": f"Bearer {token}"})
                tally.http(name, r, 401)
            for way in ("header", "subprotocol", "query"):
                tally.close(f"{name} ({way})", await ws_close_code(ws_url, token, way), BAD_TOKEN)
        # no token at all, and an empty one
        for method, path, body in ROUTES:
            tally.http("no token", await client.request(method, path, json=body), 401)
        tally.close("no token", await ws_close_code(ws_url, "", "query"), BAD_TOKEN)

        # a reader: reads, but manages nothing
        reader = await login(READER)
        rb = {"Authorization": f"Bearer {reader}"}
        r = await client.get("/api/users/me", headers=rb)
        assert r.status_code == 200 and r.json()["role"] == "reader", r.text
        for method, path, body in ADMIN_ROUTES:
            tally.http("a reader's", await client.request(method, path, json=body, headers=rb),
                       403)

        # a stream outlives its check: logged out, or its account disabled, it is closed 4403
        async def logout() -> None:
            r = await client.post("/api/users/logout", headers=rb)
            assert r.status_code == 200, r.text

        tally.close("reader logged out while streaming",
                    await _stream_closed_on_revoke(d, reader, logout), TOKEN_REVOKED)
        again = await login(READER)

        async def disable() -> None:
            r = await client.post(f"/api/users/{users[READER]}/disable", headers=bearer)
            assert r.status_code == 200, r.text

        tally.close("reader disabled while streaming",
                    await _stream_closed_on_revoke(d, again, disable), TOKEN_REVOKED)
        figures.extra["forged_tokens"] = len(tokens) + 1
    return tally


def test_every_forged_or_stale_token_is_refused(tmp_path: Path, figures: Figures) -> None:
    secret = secrets.token_hex(32)
    d = LiveDaemon(tmp_path / "home", pairs=("ETH/USD",),
                   env={"KMS_AUTH_SECRET": secret, "KMS_KRAKEN_SNAPSHOT_INTERVAL": "0.2",
                        "KMS_AUTH_ACCESS_TTL": "0.5"})
    try:
        d.start()
        assert d.daemon is not None
        figures.rss_before_mb = rss_mb(d.daemon.proc.pid)
        tally = asyncio.run(_scenario(d, figures, secret.encode()))
        figures.rss_after_mb = rss_mb(d.daemon.proc.pid)
    finally:
        d.stop()
    figures.requests = sum(tally.statuses.values()) + sum(tally.closes.values())
    figures.errors_5xx = sum(n for s, n in tally.statuses.items() if s >= 500)
    figures.answered_503 = tally.statuses[503]
    figures.extra.update({"http": dict(tally.statuses), "ws_closes": dict(tally.closes)})
    figures.note = (f"{figures.extra['forged_tokens']} forged or stale tokens × 3 routes and "
                    f"3 ways to stream; HTTP {dict(sorted(tally.statuses.items()))}, "
                    f"closes {dict(sorted(tally.closes.items()))}")
    assert not tally.wrong, "\n".join(tally.wrong)
    assert figures.errors_5xx == 0
