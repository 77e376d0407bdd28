"""Users and authentication: account stores (SQLite, MySQL) with roles, bcrypt passwords in a
bounded two-lane queue, JWT tokens and their revocation, login and registration throttling,
and :class:`AuthService` tying them together for the gateway and the CLI.

Everything here takes plain values; the daemon's wiring builds them from the settings
(:func:`krakenstream.daemon.wiring.open_auth`: store opened, secret loaded).
"""

from __future__ import annotations

from .access import AccessCache, Principal
from .base import Access, Email, Role, User, UserStore, normalize_email
from .passwords import Lane, PasswordHasher, check_password_policy
from .service import AuthService
from .throttle import LoginThrottle, RegistrationLimit, ThrottleStats
from .tokens import Claims, IssuedToken, TokenCodec, load_secret

__all__ = [
    "Access",
    "AccessCache",
    "AuthService",
    "Claims",
    "Email",
    "IssuedToken",
    "Lane",
    "LoginThrottle",
    "PasswordHasher",
    "Principal",
    "RegistrationLimit",
    "Role",
    "ThrottleStats",
    "TokenCodec",
    "User",
    "UserStore",
    "check_password_policy",
    "load_secret",
    "normalize_email",
]

