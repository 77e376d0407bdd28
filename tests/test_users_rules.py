"""``users/rules.py``: the rules both user stores apply, checked as pure functions (the stores
apply them in ``test_users_store.py``'s contract suite)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from krakenstream.errors import Conflict, Forbidden
from krakenstream.users.base import Role, User
from krakenstream.users.rules import (
    DUPLICATE_PREFIX,
    Rekey,
    closed_registration,
    enabled_admin,
    last_admin_conflict,
    plan_rekey,
    temporary_key,
    void_before,
)


def test_keys_move_to_the_new_rule_and_the_oldest_keeps_a_shared_one() -> None:
    rows = [
        (3, "ｍail@x.org", "ｍail@x.org"),  # a look-alike, registered later
        (1, "Mail@X.org", "mail@x.org"),   # the real address, first
        (2, "straße@x.org", "straße@x.org"),
        (4, "STRASSE@x.org", "strasse@x.org"),
        (5, "ok@x.org", "ok@x.org"),        # already right: left out
    ]
    plan = plan_rekey(rows)
    assert plan == [
        Rekey(2, "strasse@x.org", disable=False),
        Rekey(3, f"{DUPLICATE_PREFIX}3:mail@x.org", disable=True),
        Rekey(4, f"{DUPLICATE_PREFIX}4:strasse@x.org", disable=True),
    ]
    # id 1's key was already the new one; the plan is the same however the rows come
    assert plan_rekey(reversed(rows)) == plan


def test_the_plan_run_again_changes_nothing() -> None:
    rows = [(1, "Mail@X.org", "Mail@X.org"), (2, "MAIL@x.org", "mail@x.org")]
    first = plan_rekey(rows)
    after = {r.user_id: r.key for r in first}
    assert plan_rekey([(i, a, after.get(i, k)) for i, a, k in rows]) == []


def test_temporary_keys_are_no_address_and_differ_by_account() -> None:
    assert temporary_key(7) != temporary_key(8)
    assert "@" not in temporary_key(7) and temporary_key(7).startswith("#")


def test_only_an_enabled_admin_counts_as_one() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert enabled_admin(User(1, "a@x.org", when, Role.ADMIN))
    assert not enabled_admin(User(1, "a@x.org", when, Role.ADMIN, disabled=True))
    assert not enabled_admin(User(2, "b@x.org", when, Role.READER))


def test_refusals_say_what_to_do() -> None:
    conflict = last_admin_conflict("boss@x.org")
    assert isinstance(conflict, Conflict)
    assert str(conflict).startswith("boss@x.org is the last enabled admin")
    assert conflict.hint == "promote another account first: kms user promote EMAIL"
    closed = closed_registration()
    assert isinstance(closed, Forbidden) and "kms user add EMAIL" in (closed.hint or "")


def test_a_disabled_accounts_tokens_end_with_the_current_second() -> None:
    before = time.time()
    cut = void_before()
    assert isinstance(cut, int)
    assert before < cut <= time.time() + 1  # every token issued so far (iat rounds down)
