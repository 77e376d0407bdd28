"""Users and authentication: account stores (SQLite, MySQL), bcrypt passwords, JWT tokens,
login throttling, and :class:`AuthService` tying them together for the gateway and the CLI.

    store = open_user_store(settings)      # not yet opened
    auth = await open_auth(settings)       # store opened, secret loaded; await auth.close()
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ..config import Settings
from .base import Email, User, UserStore, normalize_email
from .passwords import PasswordHasher, check_password_policy
from .service import AuthService
from .throttle import LoginThrottle, ThrottleStats
from .tokens import Claims, IssuedToken, TokenCodec, load_secret

__all__ = [
    "AuthService",
    "Claims",
    "Email",
    "IssuedToken",
    "LoginThrottle",
    "PasswordHasher",
    "ThrottleStats",
    "TokenCodec",
    "User",
    "UserStore",
    "check_password_policy",
    "load_secret",
    "normalize_email",
    "open_auth",
    "open_user_store",
]


def open_user_store(settings: Settings) -> UserStore:
    """The store ``users.backend`` names, not yet opened (``await store.open()``)."""
    if settings.users.backend == "mysql":
        from .mysql import MysqlUserStore

        return MysqlUserStore(settings.mysql.url)
    from .sqlite import SqliteUserStore

    path = Path(settings.users.path) if settings.users.path else (
        settings.paths.data_dir / "users.sqlite3"
    )
    return SqliteUserStore(path.expanduser())


async def open_auth(settings: Settings) -> AuthService:
    """An :class:`AuthService` ready to use: secret loaded (or generated), store opened and
    its schema brought up to date, dummy hash prepared. Close it with ``await auth.close()``.

    Raises ConfigError (bad secret or secret file) and BackendUnavailable (store).
    """
    auth = settings.auth
    secret = await asyncio.to_thread(load_secret, settings)
    tokens = TokenCodec(secret, ttl=auth.token_ttl, issuer=auth.issuer, audience=auth.audience)
    hasher = PasswordHasher(auth.bcrypt_cost)
    store = open_user_store(settings)
    await store.open()
    try:
        await hasher.prepare()
    except BaseException:
        await store.close()
        raise
    return AuthService(
        store,
        hasher=hasher,
        tokens=tokens,
        throttle=LoginThrottle(max_failures=auth.login_max_failures, window=auth.login_window),
        min_password_length=auth.min_password_length,
    )
