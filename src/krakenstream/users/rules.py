"""Rules both user stores apply the same way, so the backends cannot drift apart: who may be
removed from the admins, when a disabled account's tokens end, what closed registration says,
and the plan of the schema upgrade that moves email keys to the NFKC + case-folding rule.

The last enabled admin cannot be demoted, disabled or deleted (a server nobody can manage is
repaired only by editing its database): the stores check it in the same atomic step as the
change, with :func:`enabled_admin` and :func:`last_admin_conflict`.

Keys made by earlier versions were the address lower-cased. Under the new rule
(:func:`~krakenstream.users.base.email_key`) two existing accounts can share one key: a
look-alike (``ｍail@x.org``) registered beside the real address, or ``straße``/``strasse``.
Both stores apply the same pure plan, so they agree:

* every account gets the new key of its address;
* when several accounts share one, the oldest (lowest id) keeps it: it is the one the
  address's owner made first, the later one is the look-alike. Each later one gets a key no
  address can have (``#dup<id>:...``: ``:`` is not allowed in an unquoted local part, and quoted
  ones are refused) and is **disabled**, kept for an admin to look at (``kms user list``)
  rather than deleted; its tokens stop working and it cannot log in.

The plan is deterministic, so running it again (MySQL commits DDL as it goes, and an upgrade
cut short is repeated) gives the same keys.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import Conflict, Forbidden
from .base import MAX_EMAIL_LENGTH, Role, User, email_key

#: how a key set aside for a look-alike starts (never the start of a valid address's key)
DUPLICATE_PREFIX = "#dup"


@dataclass(frozen=True, slots=True)
class Rekey:
    """One account's change: its new key, and whether it must be disabled (a look-alike)."""

    user_id: int
    key: str
    disable: bool


def plan_rekey(rows: Iterable[tuple[int, str, str]]) -> list[Rekey]:
    """From ``(id, address, current key)`` rows, the changes to make (rows whose key is
    already right are left out). A row already set aside (``#dup``) stays set aside."""
    owner: dict[str, int] = {}
    changes: list[Rekey] = []
    for user_id, address, current in sorted(rows):
        key = email_key(address)
        if key in owner:
            aside = f"{DUPLICATE_PREFIX}{user_id}:{key}"[:MAX_EMAIL_LENGTH]
            if current != aside:
                changes.append(Rekey(user_id, aside, disable=True))
            continue
        owner[key] = user_id
        if current != key:
            changes.append(Rekey(user_id, key, disable=False))
    return changes


def temporary_key(user_id: int) -> str:
    """A key held for a moment while keys move (unique, never a valid address's key), so
    that swapping two rows' keys never trips the unique index halfway."""
    return f"#moving{user_id}"


def enabled_admin(user: User) -> bool:
    return user.role is Role.ADMIN and not user.disabled


def last_admin_conflict(email: str) -> Conflict:
    return Conflict(
        f"{email} is the last enabled admin: the server would have nobody to manage it",
        hint="promote another account first: kms user promote EMAIL",
    )


def closed_registration() -> Forbidden:
    return Forbidden("registration is closed: only an admin creates accounts",
                     hint="ask an admin to run: kms user add EMAIL")


def void_before() -> int:
    """``tokens_valid_after`` for an account disabled now: the next whole second, so every
    token issued until now (``iat`` is in whole seconds, rounded down) is void."""
    return math.floor(time.time()) + 1
