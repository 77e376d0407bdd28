"""Registration, login and token checks: the one place the gateway and CLI ask about users.

It ties the store, the hasher, the token codec and the throttle together and holds the rules
that span them: a login for an unknown email costs a bcrypt run like a wrong password, and both
fail with the same message, so neither the answer nor its timing tells whether an account
exists; a throttled email or address is refused before any password is checked.
"""

from __future__ import annotations

import logging

from ..errors import AuthError, InputError
from .base import User, UserStore, normalize_email
from .passwords import PasswordHasher, check_password_policy
from .throttle import LoginThrottle
from .tokens import Claims, IssuedToken, TokenCodec

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "invalid email or password"


class AuthService:
    """Users and their tokens, over any :class:`~krakenstream.users.base.UserStore`."""

    def __init__(
        self,
        store: UserStore,
        *,
        hasher: PasswordHasher,
        tokens: TokenCodec,
        throttle: LoginThrottle,
        min_password_length: int,
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.tokens = tokens
        self.throttle = throttle
        self.min_password_length = min_password_length

    async def register(self, email: str, password: str) -> User:
        """A new account; InputError (bad email), PasswordPolicyError, Conflict (taken)."""
        parsed = normalize_email(email)
        check_password_policy(password, min_length=self.min_password_length)
        password_hash = await self.hasher.hash(password)
        user = await self.store.create(parsed.address, password_hash)
        log.info("users registered id=%d", user.id)
        return user

    async def login(self, email: str, password: str, client: str) -> IssuedToken:
        """A token for correct credentials; ``client`` is the caller's address (throttling).

        Raises Throttled (too many recent failures), AuthError (wrong email or password, same
        message for both), BackendUnavailable (the store).
        """
        try:
            key = normalize_email(email).key
        except InputError:
            key = None
        throttle_key = key if key is not None else str(email).strip().lower()
        self.throttle.begin(throttle_key, client)
        try:
            if key is None or not isinstance(password, str):
                # a malformed address cannot exist: no account to hide, no bcrypt run to spend
                self.throttle.failure(throttle_key, client)
                raise AuthError(INVALID_CREDENTIALS)
            found = await self.store.get_by_email(email)
            hashed = found[1] if found is not None else None
            if not await self.hasher.verify(password, hashed) or found is None:
                self.throttle.failure(key, client)
                log.info("users login failed client=%s", client[:64])
                raise AuthError(INVALID_CREDENTIALS)
            self.throttle.success(key)
            return self.tokens.issue(found[0])
        finally:
            self.throttle.release(throttle_key, client)

    def verify(self, token: str) -> Claims:
        """The claims of a valid token, else AuthError saying why (expired, forged...)."""
        return self.tokens.verify(token)

    async def me(self, claims: Claims) -> User:
        """The account a verified token belongs to; AuthError if it no longer exists."""
        user = await self.store.get_by_id(claims.user_id)
        if user is None:
            raise AuthError("the account this token was issued for no longer exists")
        return user

    async def close(self) -> None:
        """Close the store."""
        await self.store.close()
