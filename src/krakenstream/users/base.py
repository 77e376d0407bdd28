"""The user record, roles, the one interface every user store implements, and email rules.

Both stores (SQLite and MySQL) call :func:`normalize_email` themselves, so the rule that decides
"is this address already taken?" lives in exactly one place and cannot drift between backends:
the store keeps the address as the user wrote it (trimmed, Unicode NFC, domain lower-cased) for
display, and a *key* under a unique index for uniqueness and look-ups.

The key is the address under NFKC and case folding (:func:`email_key`), so look-alikes that
are the same letters in another form are one address: fullwidth ``ｍ`` is ``m``, the ligature
``ﬁ`` is ``fi``, ``ß`` is ``ss``. Letters of another script that merely look alike (Cyrillic
``і`` beside Latin ``i``) are not folded by any normal form, so a new address whose local part
mixes scripts is refused (:func:`check_single_script`), the way UTS #39 "highly restrictive"
identifiers do; one script throughout (``用户``, ``θσερ``) stays welcome.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import email_validator
from confusable_homoglyphs import categories

from ..errors import InputError

#: RFC 5321's limit on a forward path, applied to the address and to its key
MAX_EMAIL_LENGTH = 254
#: ids are positive 64-bit integers in both databases; anything else cannot name a user
MAX_USER_ID = 2**63 - 1


class Role(enum.StrEnum):
    """What an account may do: admins manage pairs and accounts, readers read."""

    ADMIN = "admin"
    READER = "reader"


@dataclass(frozen=True, slots=True)
class User:
    """A registered account; ``created_at`` is timezone-aware UTC."""

    id: int
    email: str
    created_at: datetime
    role: Role = Role.READER
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Access:
    """What the store says about a token's owner now: checked on every request (through
    :class:`~krakenstream.users.access.AccessCache`), unlike the token's signature, which
    cannot change. ``tokens_valid_after`` is epoch seconds: a token issued (``iat``) before
    it is void (set when the account is disabled)."""

    role: Role
    disabled: bool
    tokens_valid_after: int
    token_revoked: bool


@dataclass(frozen=True, slots=True)
class Email:
    """A validated address: ``address`` to show, ``key`` to compare (unique per user)."""

    address: str
    key: str


#: scripts that may share one local part (UTS #39, "highly restrictive"): Japanese, Chinese
#: and Korean writing mix Han with their own scripts, and any of them with Latin
_ALLOWED_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
#: characters of no script of their own: digits, punctuation, symbols, combining marks
_NO_SCRIPT = frozenset({"COMMON", "INHERITED"})


def email_key(address: str) -> str:
    """The key an address is compared by: NFKC, case-folded, NFKC again (case folding can
    produce text that is not in normal form: this is Unicode's NFKC_Casefold in Python)."""
    return unicodedata.normalize(
        "NFKC", unicodedata.normalize("NFKC", address).casefold()
    )


def scripts_of(text: str) -> set[str]:
    """The Unicode scripts of the letters in ``text`` (digits, punctuation, symbols and
    combining marks belong to none)."""
    return {categories.alias(ch) for ch in text} - _NO_SCRIPT


def check_single_script(local_part: str) -> None:
    """Raise :class:`InputError` if ``local_part`` mixes scripts a person would not, the mark of
    a look-alike (``pаypal`` with a Cyrillic ``а``)."""
    scripts = scripts_of(unicodedata.normalize("NFKC", local_part))
    if len(scripts) <= 1 or any(scripts <= mix for mix in _ALLOWED_MIXES):
        return
    shown = ", ".join(sorted(s.title() for s in scripts))
    raise InputError(
        f"the part before the @ mixes letters of several scripts ({shown}), as look-alike "
        "addresses do; type it in one script",
        hint="an address may use Latin letters, or another script, but not both at once",
    )


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


def email_schema() -> dict[str, object]:
    """The address as the HTTP API's schema declares it (JSON Schema, in the bodies that take
    one): an ``email``, at most :data:`MAX_EMAIL_LENGTH` characters, and not at a domain
    ``email-validator`` holds special-use or reserved (``.test``, ``.local``, ``.onion``...:
    its own list, so the schema cannot drift from what :func:`normalize_email` refuses).
    A client that sends what the schema allows is never refused for a rule it did not
    state; the rest (a quoted local part, an IP literal, mixed scripts) the description says.
    """
    names = "|".join(_any_case(d) for d in email_validator.SPECIAL_USE_DOMAIN_NAMES)
    return {
        "format": "email",
        "maxLength": MAX_EMAIL_LENGTH,
        "pattern": rf"^[^@]+@(?!(?:[^@]*\.)?(?:{names})\.?$)[^@]+$",
        "description": "an address with a dotted domain, not a special-use one (.test, "
        ".local, .onion...); no quoted local part, no IP literal, and a new address's part "
        "before the @ in one script",
    }


def normalize_email(raw: str, *, new: bool = False) -> Email:
    """Trim and validate ``raw``; raise :class:`InputError` saying what is wrong with it.

    Syntax is checked by ``email-validator`` (no DNS: registering must work offline): a dotted
    domain, no quoted local part, no IP-literal domain, no invisible or unsafe Unicode. The
    key folds case in the local part too: strictly it is case-sensitive, but two accounts
    ``Bob@x.org`` and ``bob@x.org`` would be a trap for users, never what they meant.

    ``new``: the address is being registered, so the rules for new addresses apply too (one
    script in the local part). Look-ups skip them, so an account made before a rule existed
    can still log in.
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
    if new:
        check_single_script(valid.local_part)
    key = email_key(address)
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

    async def create(
        self, email: str, password_hash: str, *, role: Role | None = None,
        first_only: bool = False,
    ) -> User:
        """Add an account; :class:`~krakenstream.errors.Conflict` if the email is taken
        (by its key), :class:`~krakenstream.errors.InputError` if it is malformed.

        ``role=None``: admin if the store holds no account yet, else reader, decided
        atomically (of concurrent first registrations, on any number of connections, exactly
        one becomes admin). ``first_only``: :class:`~krakenstream.errors.Forbidden` unless the
        store is empty, decided in the same atomic step (closed registration).
        """

    async def is_empty(self) -> bool:
        """Whether the store holds no account at all."""

    async def list_users(self) -> list[User]:
        """Every account, oldest first."""

    async def set_role(self, user_id: int, role: Role) -> User:
        """Change an account's role; NotFound, or Conflict if that would leave no enabled
        admin (checked and changed in one atomic step)."""

    async def set_disabled(self, user_id: int, disabled: bool) -> User:
        """Disable (void every token issued so far, refuse logins) or enable an account;
        NotFound, or Conflict for the last enabled admin."""

    async def delete(self, user_id: int) -> None:
        """Remove an account; NotFound, or Conflict for the last enabled admin."""

    async def revoke_token(self, jti: str, user_id: int, expires_at: int) -> None:
        """Record that the token ``jti`` (expiring at epoch ``expires_at``) is void; kept
        until it expires, then purged. Revoking twice is harmless."""

    async def access(self, user_id: int, jti: str) -> Access | None:
        """The account's role and state and whether ``jti`` is revoked, in one round trip;
        None if the account does not exist."""

    async def get_by_email(self, email: str) -> tuple[User, str] | None:
        """The account and its password hash, or None (also for a malformed email)."""

    async def get_by_id(self, user_id: int) -> User | None:
        """The account with this id, or None."""

    async def ping(self) -> None:
        """Round-trip to the database; :class:`~krakenstream.errors.BackendUnavailable` if
        it does not answer."""
