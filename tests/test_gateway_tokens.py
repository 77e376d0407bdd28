"""The verified-token cache (gateway/tokens.py): verdicts kept until expiry, bounded, refusals
never kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from krakenstream.daemon.gateway.tokens import VerifiedTokens
from krakenstream.errors import AuthError
from krakenstream.users.tokens import Claims


def test_verified_tokens_kept_until_expiry_and_bounded() -> None:
    now = [1_000.0]
    calls: list[str] = []

    def verify(token: str) -> Claims:
        calls.append(token)
        if token.startswith("bad"):
            raise AuthError("token signature is invalid")
        return Claims(user_id=len(token), email="a@example.com",
                      expires_at=datetime.fromtimestamp(1_010, UTC))

    cache = VerifiedTokens(verify, size=2, clock=lambda: now[0])
    assert cache.verify("t1").user_id == 2
    assert cache.verify("t1").user_id == 2
    assert calls == ["t1"]  # the second check was the kept verdict
    for _ in range(2):  # refusals are never kept
        with pytest.raises(AuthError):
            cache.verify("bad")
    assert calls == ["t1", "bad", "bad"]
    cache.verify("t2")
    cache.verify("t3")  # over the size: t1, least recently used, is dropped
    cache.verify("t1")
    assert calls[-1] == "t1" and len(calls) == 6
    now[0] = 1_010.0  # expired: verified afresh (and the codec decides)
    cache.verify("t1")
    assert len(calls) == 7
