"""The access cache: a token's verdict from the users store, reused for ``ttl`` seconds, changed
at once by local changes, shared by concurrent requests, and kept through a store outage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from krakenstream.errors import AuthError, BackendUnavailable, Forbidden
from krakenstream.users import Access, AccessCache, Claims, Role

OK = Access(role=Role.READER, disabled=False, tokens_valid_after=0, token_revoked=False)


class FakeStore:
    """Only ``access``: answers from a dict, counts calls, can fail or be held."""

    def __init__(self) -> None:
        self.state: dict[int, Access] = {7: OK}
        self.calls = 0
        self.down = False
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def access(self, user_id: int, jti: str) -> Access | None:
        self.calls += 1
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.down:
            raise BackendUnavailable("users store down")
        return self.state.get(user_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def claims(user_id: int = 7, jti: str = "t1", issued_at: int = 100,
           role: Role = Role.READER) -> Claims:
    return Claims(user_id=user_id, email="who@example.com", jti=jti, issued_at=issued_at,
                  role=role, expires_at=datetime(2099, 1, 1, tzinfo=UTC))


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(store: FakeStore, clock: Clock) -> AccessCache:
    return AccessCache(store, ttl=2.0, clock=clock)  # type: ignore[arg-type]


async def test_an_answer_is_reused_for_ttl_seconds(cache: AccessCache, store: FakeStore,
                                                   clock: Clock) -> None:
    principal = await cache.check(claims())
    assert (principal.user_id, principal.role, principal.jti) == (7, Role.READER, "t1")
    assert not principal.is_admin
    clock.now += 1.9
    await cache.check(claims())
    assert store.calls == 1
    # another gateway promoted the account: seen once the answer is ttl old
    store.state[7] = Access(role=Role.ADMIN, disabled=False, tokens_valid_after=0,
                            token_revoked=False)
    assert (await cache.check(claims())).role is Role.READER
    clock.now += 0.1
    assert (await cache.check(claims())).is_admin
    assert store.calls == 2


@pytest.mark.parametrize("state, message", [
    (None, "no longer exists"),
    (Access(role=Role.ADMIN, disabled=True, tokens_valid_after=0, token_revoked=False),
     "account is disabled"),
    (Access(role=Role.ADMIN, disabled=False, tokens_valid_after=0, token_revoked=True),
     "revoked \\(logged out\\)"),
    (Access(role=Role.ADMIN, disabled=False, tokens_valid_after=101, token_revoked=False),
     "disabled after it was issued"),
])
async def test_refusals(cache: AccessCache, store: FakeStore, state: Access | None,
                        message: str) -> None:
    if state is None:
        del store.state[7]
    else:
        store.state[7] = state
    with pytest.raises(AuthError, match=message) as info:
        await cache.check(claims(issued_at=100))
    assert not isinstance(info.value, Forbidden)  # 401: the token no longer works


async def test_a_token_issued_after_re_enabling_works(cache: AccessCache,
                                                      store: FakeStore) -> None:
    store.state[7] = Access(role=Role.READER, disabled=False, tokens_valid_after=101,
                            token_revoked=False)
    assert (await cache.check(claims(jti="new", issued_at=101))).user_id == 7


async def test_local_changes_apply_at_once(cache: AccessCache, store: FakeStore) -> None:
    await cache.check(claims())
    cache.revoked(7, "t1")
    with pytest.raises(AuthError, match="revoked"):
        await cache.check(claims())
    await cache.check(claims(jti="t2"))  # the owner's other tokens still work
    store.state[7] = Access(role=Role.READER, disabled=True, tokens_valid_after=0,
                            token_revoked=False)
    await cache.check(claims(jti="t2"))  # cached: not yet seen...
    cache.forget_user(7)  # ...until this gateway disables it
    with pytest.raises(AuthError, match="disabled"):
        await cache.check(claims(jti="t2"))


async def test_concurrent_checks_share_one_query(cache: AccessCache, store: FakeStore) -> None:
    store.hold = asyncio.Event()
    checks = [asyncio.create_task(cache.check(claims())) for _ in range(20)]
    await store.entered.wait()
    store.hold.set()
    assert len({p.user_id for p in await asyncio.gather(*checks)}) == 1
    assert store.calls == 1


async def test_an_answer_fetched_across_a_local_change_is_not_kept(
    cache: AccessCache, store: FakeStore
) -> None:
    store.hold = asyncio.Event()
    pending = asyncio.create_task(cache.check(claims()))
    await store.entered.wait()
    cache.forget_user(7)  # disabled here while the query was in flight
    store.hold.set()
    await pending  # began before the change: it may pass
    store.hold = None
    store.state[7] = Access(role=Role.READER, disabled=True, tokens_valid_after=0,
                            token_revoked=False)
    with pytest.raises(AuthError, match="disabled"):
        await cache.check(claims())  # but its answer was not kept: asked again


async def test_store_outage_uses_the_last_answer_or_the_token(
    cache: AccessCache, store: FakeStore, clock: Clock
) -> None:
    store.state[7] = Access(role=Role.ADMIN, disabled=False, tokens_valid_after=0,
                            token_revoked=False)
    await cache.check(claims())
    store.down = True
    clock.now += 60
    assert (await cache.check(claims())).is_admin  # the last answer, however old
    # never asked about: the token's claims stand (its role at issue time)
    unseen = await cache.check(claims(user_id=8, role=Role.READER))
    assert unseen.role is Role.READER and cache.store_failures == 2
    store.down = False
    store.state[7] = Access(role=Role.READER, disabled=True, tokens_valid_after=0,
                            token_revoked=False)
    with pytest.raises(AuthError, match="disabled"):
        await cache.check(claims())


async def test_wait_change_wakes_on_a_local_change(cache: AccessCache) -> None:
    waiter = asyncio.create_task(cache.wait_change(30))
    await asyncio.sleep(0)
    assert not waiter.done()
    cache.forget_user(99)
    await asyncio.wait_for(waiter, 5)
    await cache.wait_change(0.01)  # and returns after its timeout otherwise


async def test_the_cache_is_bounded(store: FakeStore, clock: Clock) -> None:
    cache = AccessCache(store, ttl=60, clock=clock, size=10)  # type: ignore[arg-type]
    for i in range(50):
        await cache.check(claims(jti=f"t{i}"))
    assert len(cache._seen) == 10
    cache.forget_user(7)
    assert len(cache._seen) == 0


def test_principal_require_admin() -> None:
    from krakenstream.users import Principal

    reader = Principal(user_id=1, email="r@example.com", role=Role.READER, jti="j")
    with pytest.raises(Forbidden, match="tracking a pair needs an admin account; "
                                        "r@example.com is a reader"):
        reader.require_admin("tracking a pair")
    Principal(user_id=2, email="a@example.com", role=Role.ADMIN, jti="j").require_admin("x")
