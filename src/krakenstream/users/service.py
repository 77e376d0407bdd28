"""Accounts, logins and tokens: the one place the gateway and the CLI ask about users.

It ties the store, the hasher, the token codec, the throttles and the access cache together
and holds the rules that span them: a login for an unknown email costs a bcrypt run like a
wrong password, and both fail with the same message, so neither the answer nor its timing
tells whether an account exists; a throttled email or address is refused before any password
is checked; a closed server refuses a registration before hashing its password; every change
to an account made here is seen by this process's access cache at once.
"""

from __future__ import annotations

import logging

from ..errors import AuthError, Forbidden, InputError
from .access import AccessCache, Principal
from .base import Role, User, UserStore, normalize_email
from .passwords import Lane, PasswordHasher, check_password_policy
from .rules import closed_registration
from .throttle import LoginThrottle, RegistrationLimit
from .tokens import Claims, IssuedToken, TokenCodec

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "invalid email or password"
#: ``auth.registration``: anyone may register, or only the first account and admins' additions
REGISTRATION_POLICIES = ("open", "closed")
#: seconds an access answer is reused when none is configured
DEFAULT_ACCESS_TTL = 2.0


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
        registration: str = "open",
        registration_limit: RegistrationLimit | None = None,
        access: AccessCache | None = None,
    ) -> None:
        if registration not in REGISTRATION_POLICIES:
            raise ValueError(f"registration must be one of {REGISTRATION_POLICIES}")
        self.store = store
        self.hasher = hasher
        self.tokens = tokens
        self.throttle = throttle
        self.min_password_length = min_password_length
        self.registration = registration
        self.registration_limit = registration_limit
        self.access = access or AccessCache(store, ttl=DEFAULT_ACCESS_TTL)

    # -- accounts ----------------------------------------------------------------------------

    async def register(self, email: str, password: str, client: str | None = None) -> User:
        """Self-registration: the first account of an empty store is admin, later ones
        readers. Raises InputError (bad email), PasswordPolicyError, Conflict (taken),
        Forbidden (registration closed), Throttled (too many from ``client``), Overloaded
        (the hash queue is full)."""
        parsed = normalize_email(email, new=True)
        check_password_policy(password, min_length=self.min_password_length)
        closed = self.registration == "closed"
        if closed and not await self.store.is_empty():
            raise closed_registration()  # before bcrypt: a refusal costs no CPU
        if self.registration_limit is not None and client is not None:
            self.registration_limit.attempt(client)
        password_hash = await self.hasher.hash(password, Lane.SIGNUP)
        user = await self.store.create(parsed.address, password_hash, first_only=closed)
        log.info("users registered id=%d role=%s client=%s", user.id, user.role.value,
                 (client or "local")[:64])
        return user

    async def create_user(self, email: str, password: str, role: Role = Role.READER) -> User:
        """An account made by an admin (or the operator, locally): any policy, no throttle,
        hashed in the login lane (a person is waiting)."""
        parsed = normalize_email(email, new=True)
        check_password_policy(password, min_length=self.min_password_length)
        password_hash = await self.hasher.hash(password, Lane.LOGIN)
        user = await self.store.create(parsed.address, password_hash, role=role)
        log.info("users created id=%d role=%s", user.id, user.role.value)
        return user

    async def list_users(self) -> list[User]:
        return await self.store.list_users()

    async def set_role(self, user_id: int, role: Role) -> User:
        """Promote or demote; Conflict for the last enabled admin, NotFound."""
        user = await self.store.set_role(user_id, role)
        self.access.forget_user(user_id)
        log.info("users role id=%d role=%s", user_id, role.value)
        return user

    async def set_disabled(self, user_id: int, disabled: bool) -> User:
        """Disable (every token of the account stops working; logins are refused) or enable
        (its old tokens stay void: the owner logs in again)."""
        user = await self.store.set_disabled(user_id, disabled)
        self.access.forget_user(user_id)
        log.info("users %s id=%d", "disabled" if disabled else "enabled", user_id)
        return user

    async def delete_user(self, user_id: int) -> None:
        await self.store.delete(user_id)
        self.access.forget_user(user_id)
        log.info("users deleted id=%d", user_id)

    # -- logins and tokens ----------------------------------------------------------------------

    async def login(self, email: str, password: str, client: str) -> IssuedToken:
        """A token for correct credentials; ``client`` is the caller's address (throttling).

        Raises Throttled (too many recent failures), AuthError (wrong email or password, same
        message for both), Forbidden (a disabled account, told only to whoever knows its
        password), BackendUnavailable (the store), Overloaded (the hash queue is full).
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
            if found[0].disabled:
                raise Forbidden("this account is disabled",
                                hint="ask an admin of this server to enable it")
            return self.tokens.issue(found[0])
        finally:
            self.throttle.release(throttle_key, client)

    async def logout(self, claims: Claims) -> None:
        """Revoke this token on every gateway: recorded in the store until it expires."""
        await self.store.revoke_token(claims.jti, claims.user_id,
                                      int(claims.expires_at.timestamp()))
        self.access.revoked(claims.user_id, claims.jti)
        log.info("users logout id=%d", claims.user_id)

    def verify(self, token: str) -> Claims:
        """The claims of a validly signed token, else AuthError saying why (expired,
        forged...). Whether it is still honoured is :meth:`authorize`'s question."""
        return self.tokens.verify(token)

    async def authorize(self, claims: Claims) -> Principal:
        """Who the verified token speaks for now, with the account's current role; AuthError
        if it was revoked or its account disabled or deleted."""
        return await self.access.check(claims)

    async def me(self, claims: Claims) -> User:
        """The account a verified token belongs to; AuthError if it no longer exists."""
        user = await self.store.get_by_id(claims.user_id)
        if user is None:
            raise AuthError("the account this token was issued for no longer exists")
        return user

    async def close(self) -> None:
        """Close the store."""
        await self.store.close()
