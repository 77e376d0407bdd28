"""The credentials file: the token ``kms login`` got from each daemon, readable by its owner only.

``credentials.json`` under the config directory (``KMS_HOME`` when set) maps a server URL to
``{"email", "token", "expires_at"}``, so one person can be logged in to several daemons at once.
The file holds bearer tokens, so it is never readable by anyone else, not even for an instant:
every write creates a new file with mode 0600 from the start (``os.open`` with the mode, never
a chmod after writing), fills it, and renames it over the old one, so a crash leaves either the
old file or the new one, never half of one. A save or a removal reads the file, changes one
entry and writes it back under an exclusive ``flock`` of its folder (no lock file to leave
behind), so two ``kms login`` at once (two shells, two servers) both land instead of the last
write dropping the other's token. An expired token is caught here, before any request.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from ..config import Settings
from ..core.times import parse_iso
from ..errors import AuthError, ConfigError

FILE_MODE = 0o600
DIR_MODE = 0o700


def server_key(url: str) -> str:
    """The key a server is filed under: scheme and host lower case, no trailing slash."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))


@dataclass(frozen=True, slots=True)
class Credential:
    """One daemon's token and who it was issued to."""

    email: str
    token: str
    #: ISO 8601 UTC as the daemon sent it; None if it did not say
    expires_at: str | None = None

    def expired(self, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        try:
            expires = parse_iso(self.expires_at)
        except ValueError:
            return False  # the daemon will judge it
        return (now or datetime.now(UTC)) >= expires

    def to_dict(self) -> dict[str, Any]:
        return {"email": self.email, "token": self.token, "expires_at": self.expires_at}


class CredentialsFile:
    """Tokens by server URL in one private JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def from_settings(cls, settings: Settings) -> CredentialsFile:
        return cls(settings.paths.credentials_file)

    def load(self) -> dict[str, Credential]:
        """Every stored credential; an absent file is an empty one."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        bad = ConfigError(
            f"{self.path} is not a valid credentials file",
            hint=f"delete {self.path} and run kms login again",
        )
        try:
            obj = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError as exc:
            raise bad from exc
        servers = obj.get("servers", {}) if isinstance(obj, dict) else None
        if not isinstance(servers, dict):
            raise bad
        out: dict[str, Credential] = {}
        for server, entry in servers.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
                raise bad
            expires = entry.get("expires_at")
            out[server] = Credential(
                email=str(entry.get("email", "")),
                token=entry["token"],
                expires_at=expires if isinstance(expires, str) else None,
            )
        return out

    def get(self, server: str) -> Credential | None:
        return self.load().get(server_key(server))

    def require(self, server: str, *, now: datetime | None = None) -> Credential:
        """The token for ``server``, or :class:`AuthError` (hint ``kms login``) if there is
        none or it has expired."""
        cred = self.get(server)
        if cred is None:
            raise AuthError(f"not logged in to {server_key(server)}")
        if cred.expired(now):
            raise AuthError(
                f"your session on {server_key(server)} expired at {cred.expires_at}"
            )
        return cred

    def save(self, server: str, credential: Credential) -> None:
        with self._locked():
            creds = self.load()
            creds[server_key(server)] = credential
            self._write(creds)

    def remove(self, server: str) -> bool:
        """Forget ``server``'s token; False if there was none."""
        with self._locked():
            creds = self.load()
            if creds.pop(server_key(server), None) is None:
                return False
            self._write(creds)
            return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive use of the file for one read-change-write (waits for another's)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # drops the lock

    def _write(self, creds: dict[str, Credential]) -> None:
        data = orjson.dumps(
            {"servers": {k: v.to_dict() for k, v in sorted(creds.items())}},
            option=orjson.OPT_INDENT_2,
        ) + b"\n"
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # a leftover of a crashed write by a process with our pid
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
