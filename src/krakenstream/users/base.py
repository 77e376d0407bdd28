"""The user record, the one interface every user store implements, and email normalisation.

Both stores (SQLite and MySQL) call :func:`normalize_email` themselves, so the rule that decides
"is this address already taken?" lives in exactly one place and cannot drift between backends:
the store keeps the address as the user wrote it (trimmed, Unicode NFC, domain lower-cased) for
display, and a lower-cased *key* under a unique index for uniqueness and look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import email_validator

from ..errors import InputError

#: RFC 5321's limit on a forward path, applied to the address and to its key
MAX_EMAIL_LENGTH = 254
#: ids are positive 64-bit integers in both databases; anything else cannot name a user
MAX_USER_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class User:
    """A registered account; ``created_at`` is timezone-aware UTC."""

    id: int
    email: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Email:
    """A validated address: ``address`` to show, ``key`` to compare (unique per user)."""

    address: str
    key: str


def normalize_email(raw: str) -> Email:
    """Trim and validate ``raw``; raise :class:`InputError` saying what is wrong with it.

    Syntax is checked by ``email-validator`` (no DNS: registering must work offline): a dotted
    domain, no quoted local part, no IP-literal domain, no invisible or unsafe Unicode. The
    local part is lower-cased for the key too: strictly it is case-sensitive, but two accounts
    ``Bob@x.org`` and ``bob@x.org`` would be a trap for users, never what they meant.
    """
    if not isinstance(raw, str):
        raise InputError("email must be a string")
    text = raw.strip()
    if not text:
        raise InputError("email is empty")
    if len(text) > MAX_EMAIL_LENGTH:
        raise InputError(f"email is {len(text)} characters long; the maximum is "
                         f"{MAX_EMAIL_LENGTH}")
    try:
        valid = email_validator.validate_email(
            text, check_deliverability=False, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError as exc:
        raise InputError(f"invalid email {text!r}: {exc}") from exc
    address = valid.normalized
    key = address.lower()
    if len(address) > MAX_EMAIL_LENGTH or len(key) > MAX_EMAIL_LENGTH:
        raise InputError(f"email is too long; the maximum is {MAX_EMAIL_LENGTH} characters")
    return Email(address=address, key=key)


@runtime_checkable
class UserStore(Protocol):
    """Where accounts live. Implementations: ``SqliteUserStore``, ``MysqlUserStore``.

    Every method may raise :class:`~krakenstream.errors.BackendUnavailable` when the database
    cannot be reached or used; driver exceptions never escape.
    """

    async def open(self) -> None:
        """Connect, and create or upgrade the schema (idempotent; safe from two processes)."""

    async def close(self) -> None:
        """Release the connection; calling it twice is harmless."""

    async def create(self, email: str, password_hash: str) -> User:
        """Add an account; :class:`~krakenstream.errors.Conflict` if the email is taken
        (case-insensitively), :class:`~krakenstream.errors.InputError` if it is malformed."""

    async def get_by_email(self, email: str) -> tuple[User, str] | None:
        """The account and its password hash, or None (also for a malformed email)."""

    async def get_by_id(self, user_id: int) -> User | None:
        """The account with this id, or None."""

    async def ping(self) -> None:
        """Round-trip to the database; :class:`~krakenstream.errors.BackendUnavailable` if
        it does not answer."""
