"""The one exception root of krakenstream, and its tree.

Every error the library raises on purpose derives from :class:`KmsError`, so callers (the CLI,
the gateway) can tell an expected failure from a bug with one ``except``. Driver errors
(sqlite3, pymysql, redis, aiokafka, websockets) are translated into these at the boundary with
``raise ... from exc``.

    KmsError
    ├── ConfigError            a bad, unknown or misspelt setting (names the key)
    ├── InputError             bad input from a user or a client (a bad pair, a bad range...)
    │   ├── InvalidPair
    │   └── PasswordPolicyError
    ├── NotFound               an unknown pair, user or resource
    ├── Conflict               e.g. an email already registered
    ├── AuthError              missing, expired, forged, revoked or rejected credentials
    │   ├── Throttled          too many failed logins (carries retry_after seconds)
    │   └── Forbidden          authenticated, but the account's role may not do this
    ├── BackendUnavailable     a database, Redis, Kafka or the daemon cannot be reached
    │   └── Overloaded         a bounded queue is full (carries retry_after seconds)
    └── FeedError              the Kraken feed refused something (carries Kraken's message)
"""

from __future__ import annotations


class KmsError(Exception):
    """Root of every error krakenstream raises on purpose."""

    #: a short hint shown by the CLI under the message, if any
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(KmsError):
    """A setting is unknown, misspelt or has a bad value; the message names the key."""

    hint = "see config.example.toml for every key and its type"


class InputError(KmsError):
    """Bad input from a user or client."""


class InvalidPair(InputError):
    """A pair name that is not of the form BASE/QUOTE."""


class PasswordPolicyError(InputError):
    """A password that breaks the policy (too short, too long...)."""


class NotFound(KmsError):
    """An unknown pair, user or resource."""


class Conflict(KmsError):
    """A unique thing that already exists (an email already registered)."""


class AuthError(KmsError):
    """Missing, expired, forged or rejected credentials."""

    hint = "kms login"


class Throttled(AuthError):
    """Too many failed attempts; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, hint=f"wait {retry_after} s, then try again")
        self.retry_after = retry_after


class Forbidden(AuthError):
    """The caller is who they say, but their role (or the server's policy) does not allow
    this; logging in again will not help, an admin can."""

    hint = "ask an admin of this server (kms user promote) or use an admin account"


class BackendUnavailable(KmsError):
    """A backend (database, Redis, Kafka, the daemon) cannot be reached."""


class Overloaded(BackendUnavailable):
    """A bounded queue is full (password hashing under a registration flood): the request
    was refused rather than queued without bound; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, hint=f"wait {retry_after} s, then try again")
        self.retry_after = retry_after


class FeedError(KmsError):
    """The exchange refused something; the message is the exchange's own."""
