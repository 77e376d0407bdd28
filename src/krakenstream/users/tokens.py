"""Bearer tokens: signed HS256 JWTs, and the signing secret they depend on.

Verification trusts nothing in the token's header: the algorithm is pinned to HS256 (so
``alg: none`` and key-confusion tricks fail), every claim we rely on is required, and a
``crit`` header is refused because we never issue one and cannot honour an extension we do
not know. Every failure is an :class:`AuthError` whose message says which check failed.

The secret is ``auth.secret`` when configured (at least 32 bytes), else 32 random bytes
generated on first start into ``<data dir>/secret`` with mode 0600 and reused afterwards.
A secret file that others can read is refused rather than quietly fixed: it may already have
leaked, and only the operator can decide to rotate it (which logs every user out).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt

from ..errors import AuthError, ConfigError
from .base import MAX_USER_ID, Role, User

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
#: RFC 7518 §3.2: an HS256 key must be at least as long as the hash output
MIN_SECRET_BYTES = 32
#: seconds of clock skew tolerated between the host that issues and the one that verifies
LEEWAY = 5
REQUIRED_CLAIMS = ("exp", "iat", "sub", "iss", "aud", "email", "jti")
#: ours are 22 characters; the users store keeps revoked ones in a 64-character column
MAX_JTI_LENGTH = 64
#: ours are ~350 characters; a huge one is refused before any decoding work
MAX_TOKEN_LENGTH = 4096

_USER_ID = re.compile(r"[1-9][0-9]{0,18}")  # then checked against MAX_USER_ID


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says: whose it is, which token (``jti``, the handle revocation
    uses), when it was issued and until when it holds. ``role`` is the role at issue time:
    only a fallback while the users store cannot be asked (see AccessCache)."""

    user_id: int
    email: str
    expires_at: datetime
    jti: str = ""
    issued_at: int = 0
    role: Role = Role.READER


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedToken:
    """A token as handed to the client after a login."""

    token: str
    token_type: str = "bearer"
    expires_at: datetime
    user: User


class TokenCodec:
    """Issues and verifies tokens with one secret; ``clock`` (epoch seconds) is for tests."""

    def __init__(
        self,
        secret: bytes,
        *,
        ttl: int,
        issuer: str,
        audience: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"auth.secret is {len(secret)} bytes; at least {MIN_SECRET_BYTES} are needed",
                hint="leave auth.secret empty to have one generated",
            )
        self._secret = secret
        self.ttl = ttl
        self.issuer = issuer
        self.audience = audience
        self._clock = clock

    def issue(self, user: User) -> IssuedToken:
        now = int(self._clock())
        expires = now + self.ttl
        payload = {
            "sub": str(user.id),
            "email": user.email,
            "iat": now,
            "nbf": now,
            "exp": expires,
            "iss": self.issuer,
            "aud": self.audience,
            "jti": secrets.token_urlsafe(16),
            "role": user.role.value,
        }
        token = jwt.encode(payload, self._secret, algorithm=ALGORITHM)
        return IssuedToken(
            token=token, expires_at=datetime.fromtimestamp(expires, UTC), user=user
        )

    def verify(self, token: str) -> Claims:
        """The token's claims, or :class:`AuthError` naming the check that failed."""
        if not isinstance(token, str) or not token.strip():
            raise AuthError("missing bearer token")
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthError(f"token is too long ({len(token)} characters)")
        header = _unverified_header(token)
        if "crit" in header:
            raise AuthError(
                f"token has critical header extensions {header['crit']!r} "
                "that this server does not understand"
            )
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": list(REQUIRED_CLAIMS), "enforce_minimum_key_length": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthError("token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("token is meant for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("token was issued by another issuer") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError("token signature is invalid") from exc
        except jwt.InvalidAlgorithmError as exc:
            alg = header.get("alg")
            raise AuthError(f"token algorithm {alg!r} is not allowed (only {ALGORITHM})") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"token is invalid: {exc}") from exc
        except jwt.PyJWTError as exc:  # key errors: cannot happen with a checked secret
            raise AuthError(f"token cannot be verified: {exc}") from exc
        sub, email = payload["sub"], payload["email"]
        if not isinstance(sub, str) or not _USER_ID.fullmatch(sub) or int(sub) > MAX_USER_ID:
            raise AuthError("token subject is not a user id")
        if not isinstance(email, str):
            raise AuthError("token email claim is not a string")
        jti, iat = payload["jti"], payload["iat"]
        if not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI_LENGTH:
            raise AuthError("token id (jti) is not a short string")
        if not isinstance(iat, int) or isinstance(iat, bool):
            raise AuthError("token issue time (iat) is not a whole number")
        try:
            role = Role(payload.get("role", Role.READER.value))
        except ValueError:
            role = Role.READER  # an unknown role grants nothing more than reading
        return Claims(
            user_id=int(sub),
            email=email,
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
            jti=jti,
            issued_at=iat,
            role=role,
        )


def _unverified_header(token: str) -> dict[str, Any]:
    """The token's header as sent, read before PyJWT so that our own rules (no ``crit`` at
    all) apply whatever PyJWT's version accepts; nothing in it is trusted."""
    head = token.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: "[[[[..." nested deeper than the decoder's stack, within the size cap
        raise AuthError("malformed token: its header is not base64url JSON") from exc
    if not isinstance(header, dict):
        raise AuthError("malformed token: its header is not a JSON object")
    return header


# -- the secret -----------------------------------------------------------------------------


def load_secret(configured: str, path: Path) -> bytes:
    """The signing secret: ``configured`` (``auth.secret``) if set, else the secret file at
    ``path`` (created on first use).

    Blocking file I/O: call it from a thread (``asyncio.to_thread``) in async code.
    """
    if configured:
        secret = configured.encode("utf-8")
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"auth.secret is {len(secret)} bytes; at least {MIN_SECRET_BYTES} are needed",
                hint="use e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`, "
                "or leave auth.secret empty to have one generated",
            )
        if configured.lstrip().startswith("-----BEGIN"):
            raise ConfigError("auth.secret looks like a PEM key; HS256 needs a random string",
                              hint=_GENERATE)
        return secret
    try:
        return _read_secret_file(path)
    except FileNotFoundError:
        return _create_secret_file(path)


_GENERATE = "generate one with python3 -c 'import secrets; print(secrets.token_hex(32))'"


def _not_regular(path: Path) -> ConfigError:
    """A symlink, a folder, a device…: never read as the secret (a link could point anywhere)."""
    return ConfigError(
        f"the secret file {path} is not a regular file",
        hint=f"delete {path} (a symlink or a folder) to have a new one generated, or put a "
        "regular 0600 file there",
    )


def _read_secret_file(path: Path) -> bytes:
    """Read the secret, refusing a symlink, a file others can read, or another user's file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
            raise _not_regular(path) from exc
        raise ConfigError(f"cannot read the secret file {path}: {exc.strerror}",
                          hint=f"check that this user may read {path}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path)
        if info.st_uid != os.geteuid():
            raise ConfigError(
                f"the secret file {path} belongs to another user",
                hint="chown it to this user, or delete it to have a new one generated "
                "(every token is then invalid)")
        loose = stat.S_IMODE(info.st_mode) & 0o077
        if loose:
            raise ConfigError(
                f"the secret file {path} has mode {stat.S_IMODE(info.st_mode):04o}: "
                "others may read it; it must be 0600",
                hint=f"chmod 600 {path} (and delete it to rotate the secret if it may have "
                "leaked: every token is then invalid)",
            )
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    secret = data.strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"the secret file {path} holds {len(secret)} bytes; at least {MIN_SECRET_BYTES} "
            "are needed",
            hint="delete it to have a new one generated (every token is then invalid)",
        )
    return secret


def _create_secret_file(path: Path) -> bytes:
    """Write a new secret so that the file appears whole and 0600, or not at all.

    The secret goes into a private temporary file (``O_CREAT | O_EXCL``, 0600) which is then
    hard-linked into place: ``link`` fails if the name exists, so when two processes start at
    once, exactly one secret wins and the other process reads it, never a half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the secret file in {path.parent}: {exc.strerror}",
            hint=f"check that this user may write to {path.parent}, or set KMS_HOME",
        ) from exc
    try:
        try:
            os.write(fd, secrets.token_bytes(32).hex().encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
            log.info("auth secret generated path=%s", path)
        except FileExistsError:
            log.info("auth secret created by another process path=%s", path)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the secret file {path}: {exc.strerror}",
                hint=f"check that this user may write to {path.parent}, or set KMS_HOME",
            ) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return _read_secret_file(path)
