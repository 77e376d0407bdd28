"""Password policy and bcrypt hashing, kept off the event loop.

bcrypt costs tens to hundreds of milliseconds of CPU by design, so hashing and verifying run in
worker threads (at most one per core at a time: a burst of logins queues here instead of
starving the default executor). Passwords are Unicode-normalised (NFKC, as NIST SP 800-63B
advises) so the same password typed on two keyboards matches. bcrypt reads at most 72 bytes: a
longer password is refused with a message at registration, never cut short in silence.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import unicodedata

import bcrypt

from ..errors import PasswordPolicyError

log = logging.getLogger(__name__)

#: bcrypt's input limit; anything past it would be ignored by the algorithm
MAX_PASSWORD_BYTES = 72


def password_bytes(password: str) -> bytes:
    """The bytes bcrypt sees: NFKC-normalised UTF-8.

    A lone surrogate (JSON can carry ``"\\ud800"``) is encoded as it is rather than raising,
    so a login with one is an ordinary wrong password; the policy refuses such passwords at
    registration, so none can match.
    """
    return unicodedata.normalize("NFKC", password).encode("utf-8", "surrogatepass")


def check_password_policy(password: str, *, min_length: int) -> None:
    """Raise :class:`PasswordPolicyError` saying what to change; return if acceptable.

    The minimum counts characters (what a person counts); the maximum counts bytes (what
    bcrypt counts), so a password in a non-Latin script hits it sooner, and the message says so.
    """
    if not isinstance(password, str):
        raise PasswordPolicyError("password must be a string")
    normalized = unicodedata.normalize("NFKC", password)
    if len(normalized) < min_length:
        raise PasswordPolicyError(
            f"password is too short: {len(normalized)} characters, at least {min_length} needed"
        )
    try:
        size = len(normalized.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise PasswordPolicyError(
            f"password holds a lone surrogate (U+{ord(exc.object[exc.start]):04X}), which is "
            "not a character: type the password as text"
        ) from None
    if size > MAX_PASSWORD_BYTES:
        raise PasswordPolicyError(
            f"password is too long: {size} bytes in UTF-8, at most {MAX_PASSWORD_BYTES} "
            "(bcrypt's limit; non-ASCII characters take 2-4 bytes each)"
        )


class PasswordHasher:
    """bcrypt at a fixed cost, in threads, with a dummy hash for accounts that do not exist."""

    def __init__(self, cost: int) -> None:
        if not 4 <= cost <= 31:
            raise ValueError(f"bcrypt cost must be 4..31, got {cost}")
        self.cost = cost
        # one core is left to the event loop: hashing at full tilt on every core would make
        # every other request wait behind bcrypt
        self._slots = asyncio.Semaphore(max(1, (os.cpu_count() or 1) - 1))
        self._dummy: bytes | None = None

    async def _hashpw(self, secret: bytes, salt: bytes) -> bytes:
        async with self._slots:
            return await asyncio.to_thread(bcrypt.hashpw, secret, salt)

    async def _checkpw(self, secret: bytes, hashed: bytes) -> bool:
        async with self._slots:
            return await asyncio.to_thread(bcrypt.checkpw, secret, hashed)

    async def hash(self, password: str) -> str:
        """A new salted hash; the caller has checked the policy (so it fits in 72 bytes)."""
        secret = password_bytes(password)
        if len(secret) > MAX_PASSWORD_BYTES:
            raise PasswordPolicyError(
                f"password is too long: {len(secret)} bytes, at most {MAX_PASSWORD_BYTES}"
            )
        hashed = await self._hashpw(secret, bcrypt.gensalt(self.cost))
        return hashed.decode("ascii")

    async def prepare(self) -> None:
        """Make the dummy hash now, so the first unknown-user login is not slower than later
        ones (it costs one hash at the configured cost)."""
        if self._dummy is None:
            self._dummy = await self._hashpw(
                secrets.token_urlsafe(16).encode(), bcrypt.gensalt(self.cost)
            )

    async def verify(self, password: str, hashed: str | None) -> bool:
        """True if ``password`` matches ``hashed``. With ``hashed=None`` (no such account) the
        same work is done against a dummy hash and False returned, so the time taken does not
        tell whether an account exists."""
        secret = password_bytes(password)
        target: bytes
        if hashed is None:
            await self.prepare()
            assert self._dummy is not None
            target = self._dummy
        else:
            target = hashed.encode("ascii", "replace")
        # a password bcrypt cannot take never matched at registration; burn the time anyway
        too_long = len(secret) > MAX_PASSWORD_BYTES
        try:
            ok = await self._checkpw(secret[:MAX_PASSWORD_BYTES], target)
        except ValueError:
            log.error("users password hash is malformed; login refused")
            return False
        return ok and hashed is not None and not too_long
