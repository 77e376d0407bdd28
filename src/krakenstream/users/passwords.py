"""Password policy and bcrypt hashing, kept off the event loop.

bcrypt costs tens to hundreds of milliseconds of CPU by design, so hashing and verifying run in
worker threads, at most one per core but one (:class:`HashQueue`). The runs waiting for a
worker queue in two lanes: logins (and accounts an admin creates) go before self-registrations,
so a flood of registrations cannot make a legitimate login wait behind it; and each lane holds
at most ``queue_limit`` waiting runs, past which a request is refused at once with
:class:`~krakenstream.errors.Overloaded` (503 with ``Retry-After``) rather than queued without
bound. Passwords are Unicode-normalised (NFKC, as NIST SP 800-63B
advises) so the same password typed on two keyboards matches. bcrypt reads at most 72 bytes: a
longer password is refused with a message at registration, never cut short in silence.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import os
import secrets
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from typing import TypeVar

import bcrypt

from ..errors import Overloaded, PasswordPolicyError

T = TypeVar("T")

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


class Lane(enum.IntEnum):
    """Who waits for a bcrypt worker; a lower value is served first."""

    #: logins, and accounts an admin creates: people waiting at a prompt
    LOGIN = 0
    #: self-registration: what a flood is made of
    SIGNUP = 1


#: seconds one hash is assumed to take before any was measured (cost 12 on one core)
ASSUMED_HASH_SECONDS = 0.3


class HashQueue:
    """At most ``workers`` runs at once; waiting runs are served by lane, then in order,
    and at most ``limit`` wait in each lane (more are refused with :class:`Overloaded`)."""

    def __init__(self, workers: int, limit: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if workers < 1 or limit < 0:
            raise ValueError("workers >= 1 and limit >= 0 are required")
        self.workers = workers
        self.limit = limit
        self._clock = clock
        self._busy = 0
        self._waiting: dict[Lane, deque[asyncio.Future[None]]] = {lane: deque() for lane in Lane}
        self._seconds = ASSUMED_HASH_SECONDS  # a moving average of the measured runs
        #: runs refused because their lane was full, per lane
        self.refused: dict[Lane, int] = dict.fromkeys(Lane, 0)
        #: runs begun in a worker thread so far, and those in one now: what shows that a
        #: login did a hash's work and that requests were answered while one ran
        self.started = 0
        self.running = 0

    def waiting(self, lane: Lane) -> int:
        return len(self._waiting[lane])

    def retry_after(self) -> int:
        """Seconds until the work queued now is likely done: what ``Retry-After`` says."""
        queued = self._busy + sum(len(q) for q in self._waiting.values())
        return max(1, math.ceil(queued * self._seconds / self.workers))

    async def run(self, lane: Lane, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a worker thread, when this lane's turn comes."""
        await self._acquire(lane)
        try:
            started = self._clock()
            self.started += 1
            self.running += 1
            try:
                result = await asyncio.to_thread(fn, *args)
            finally:
                self.running -= 1
            self._seconds += (self._clock() - started - self._seconds) / 8
            return result
        finally:
            self._release()

    async def _acquire(self, lane: Lane) -> None:
        if self._busy < self.workers:  # a free worker means nobody waits
            self._busy += 1
            return
        queue = self._waiting[lane]
        if len(queue) >= self.limit:
            self.refused[lane] += 1
            wait = self.retry_after()
            what = "logins" if lane is Lane.LOGIN else "registrations"
            raise Overloaded(f"the server is busy hashing passwords ({len(queue)} {what} "
                             f"waiting); try again in {wait} s", retry_after=wait)
        turn = asyncio.get_running_loop().create_future()
        queue.append(turn)
        try:
            await turn  # _release hands its worker over by resolving it
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release()  # handed a worker just as we gave up: pass it on
            else:
                queue.remove(turn)
            raise

    def _release(self) -> None:
        for lane in Lane:
            queue = self._waiting[lane]
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)  # the worker goes straight to the next in line
                    return
        self._busy -= 1


class PasswordHasher:
    """bcrypt at a fixed cost, in threads, with a dummy hash for accounts that do not exist."""

    def __init__(self, cost: int, *, workers: int | None = None, queue_limit: int = 16) -> None:
        if not 4 <= cost <= 31:
            raise ValueError(f"bcrypt cost must be 4..31, got {cost}")
        self.cost = cost
        # one core is left to the event loop: hashing at full tilt on every core would make
        # every other request wait behind bcrypt
        self.queue = HashQueue(workers or max(1, (os.cpu_count() or 1) - 1), queue_limit)
        self._dummy: bytes | None = None

    async def _hashpw(self, secret: bytes, salt: bytes, lane: Lane) -> bytes:
        return await self.queue.run(lane, bcrypt.hashpw, secret, salt)

    async def _checkpw(self, secret: bytes, hashed: bytes) -> bool:
        return await self.queue.run(Lane.LOGIN, bcrypt.checkpw, secret, hashed)

    async def hash(self, password: str, lane: Lane = Lane.SIGNUP) -> str:
        """A new salted hash; the caller has checked the policy (so it fits in 72 bytes).
        ``lane``: SIGNUP for self-registration, LOGIN for an account an admin creates."""
        secret = password_bytes(password)
        if len(secret) > MAX_PASSWORD_BYTES:
            raise PasswordPolicyError(
                f"password is too long: {len(secret)} bytes, at most {MAX_PASSWORD_BYTES}"
            )
        hashed = await self._hashpw(secret, bcrypt.gensalt(self.cost), lane)
        return hashed.decode("ascii")

    async def prepare(self) -> None:
        """Make the dummy hash now, so the first unknown-user login is not slower than later
        ones (it costs one hash at the configured cost)."""
        if self._dummy is None:
            self._dummy = await self._hashpw(
                secrets.token_urlsafe(16).encode(), bcrypt.gensalt(self.cost), Lane.LOGIN
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
