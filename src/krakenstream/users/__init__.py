"""Users and authentication: account stores (SQLite, MySQL), bcrypt passwords, JWT tokens,
login throttling, and :class:`AuthService` tying them together for the gateway.

Everything here takes plain values; the daemon's wiring builds them from the settings
(:func:`krakenstream.daemon.wiring.open_auth`: store opened, secret loaded).
"""

from __future__ import annotations

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
]

