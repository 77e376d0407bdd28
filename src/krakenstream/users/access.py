"""Whether a verified token still opens the door: revocation, disabled accounts, roles.

A token's signature and claims never change, but its owner's account does: it can be disabled,
deleted, demoted, or the token itself revoked by a logout. :class:`AccessCache` asks the users
store (:meth:`~krakenstream.users.base.UserStore.access`, one indexed round trip) and keeps the
answer for ``ttl`` seconds, shared by every request of the gateway:

* a change made **through this gateway** (logout, disable, delete, promote, demote) updates or
  drops the cached answer at once, and wakes the live streams that watch it;
* a change made **through another gateway** (or the CLI on the users store) is seen here within
  ``ttl`` seconds (``auth.access_ttl``): the next request after that asks the store again.

Concurrent requests of one token share one store query. When the store cannot be reached the
last answer it gave is used, however old (the account cannot be changed while the store is
down either); for an account this gateway never asked about, the token's own claims stand
(its role at issue time), as before revocation existed, so an outage of the users database
does not lock every reader out. Revocations made before the outage and not yet seen here are
the price; the log says when that fallback is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import AuthError, BackendUnavailable, Forbidden
from .base import Access, Role, UserStore
from .tokens import Claims

log = logging.getLogger(__name__)

#: accounts and tokens whose answers are kept (least recently used forgotten first)
DEFAULT_SIZE = 50_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, as of now: the token's owner with the role the store gives."""

    user_id: int
    email: str
    role: Role
    jti: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def require_admin(self, doing: str) -> None:
        """Raise :class:`Forbidden` unless this is an admin; ``doing`` names the action."""
        if not self.is_admin:
            raise Forbidden(
                f"{doing} needs an admin account; {self.email} is a {self.role.value}",
                hint="an admin can promote you: kms user promote EMAIL",
            )


@dataclass(slots=True)
class _Seen:
    """An answer of the store and when it was fetched (monotonic seconds)."""

    at: float
    access: Access | None


class AccessCache:
    """Per-token verdicts from the users store, fresh for ``ttl`` s (see the module doc)."""

    def __init__(
        self,
        store: UserStore,
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        size: int = DEFAULT_SIZE,
    ) -> None:
        if ttl < 0 or size < 1:
            raise ValueError("ttl >= 0 and size >= 1 are required")
        self.store = store
        self.ttl = ttl
        self.size = size
        self._clock = clock
        #: (user id, jti) -> the store's last answer for that token
        self._seen: OrderedDict[tuple[int, str], _Seen] = OrderedDict()
        #: user id -> the jtis cached for it (to forget a user at once)
        self._tokens_of: dict[int, set[str]] = {}
        #: jtis revoked through this gateway (until they expire: their Claims say when)
        self._revoked: OrderedDict[str, float] = OrderedDict()
        self._inflight: dict[tuple[int, str], asyncio.Future[Access | None]] = {}
        #: bumped by every local change; an answer fetched across a change is not kept
        self._generation = 0
        self._changed = asyncio.Event()
        self.store_failures = 0

    # -- asking --------------------------------------------------------------------------

    async def check(self, claims: Claims) -> Principal:
        """The principal of a verified token, or :class:`AuthError` saying why it no longer
        opens anything (revoked, account disabled or deleted)."""
        key = (claims.user_id, claims.jti)
        if claims.jti in self._revoked:
            raise _revoked()
        seen = self._seen.get(key)
        if seen is None or self._clock() - seen.at >= self.ttl:
            try:
                access = await self._fetch(key)
            except BackendUnavailable as exc:
                self.store_failures += 1
                if seen is None:
                    log.warning("users store unreachable (%s): token of user %d accepted on "
                                "its signature, role %s", exc.message, claims.user_id,
                                claims.role.value)
                    return _principal(claims, claims.role)
                access = seen.access
        else:
            self._seen.move_to_end(key)
            access = seen.access
        return _decide(claims, access)

    async def _fetch(self, key: tuple[int, str]) -> Access | None:
        """Ask the store once for everyone waiting on this token; keep the answer unless a
        local change happened meanwhile (it may predate the change)."""
        future = self._inflight.get(key)
        if future is None:
            generation = self._generation
            future = asyncio.ensure_future(self.store.access(*key))
            self._inflight[key] = future

            def done(f: asyncio.Future[Access | None]) -> None:
                self._inflight.pop(key, None)
                if f.cancelled() or f.exception() is not None:
                    return  # exception() also marks it retrieved when nobody waits any more
                if generation == self._generation:
                    self._keep(key, f.result())

            future.add_done_callback(done)
        return await asyncio.shield(future)

    def _keep(self, key: tuple[int, str], access: Access | None) -> None:
        self._seen[key] = _Seen(self._clock(), access)
        self._seen.move_to_end(key)
        self._tokens_of.setdefault(key[0], set()).add(key[1])
        while len(self._seen) > self.size:
            (user_id, jti), _ = self._seen.popitem(last=False)
            tokens = self._tokens_of.get(user_id)
            if tokens is not None:
                tokens.discard(jti)
                if not tokens:
                    del self._tokens_of[user_id]

    # -- changes made here -----------------------------------------------------------------

    def revoked(self, user_id: int, jti: str) -> None:
        """The token was revoked through this gateway: refuse it from now on."""
        self._seen.pop((user_id, jti), None)
        self._revoked[jti] = self._clock()
        while len(self._revoked) > self.size:
            self._revoked.popitem(last=False)
        self._bump()

    def forget_user(self, user_id: int) -> None:
        """The account changed through this gateway: ask the store again on its next use."""
        for jti in self._tokens_of.pop(user_id, ()):
            self._seen.pop((user_id, jti), None)
        self._bump()

    def _bump(self) -> None:
        self._generation += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, within: float) -> None:
        """Until a local change (logout, disable...) or ``within`` seconds: how a live
        stream knows when to check its token again."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._changed.wait()


def _revoked() -> AuthError:
    return AuthError("this token was revoked (logged out); log in again")


def _principal(claims: Claims, role: Role) -> Principal:
    return Principal(user_id=claims.user_id, email=claims.email, role=role, jti=claims.jti)


def _decide(claims: Claims, access: Access | None) -> Principal:
    if access is None:
        raise AuthError("the account this token was issued for no longer exists")
    if access.disabled:
        raise AuthError("this account is disabled; its tokens no longer work",
                        hint="ask an admin of this server to enable it")
    if access.token_revoked:
        raise _revoked()
    if claims.issued_at < access.tokens_valid_after:
        raise AuthError("this token was revoked (its account was disabled after it was "
                        "issued); log in again")
    return _principal(claims, access.role)
