"""Verdicts of token signatures already verified, so a client's repeated token costs a dict
lookup. Whether a validly signed token is still honoured (revoked? account disabled?) is the
users' access cache's question, asked after this one (see :mod:`.deps`)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from ...users.tokens import Claims


class VerifiedTokens:
    """Tokens already verified, with their claims, until they expire: a bounded LRU.

    Verifying a token (HMAC, base64, three JSON decodes, claim checks) costs ~45 us, a fifth
    of a whole ``latest`` request, and a client sends the same token with every request. A
    token's signature and claims cannot change before it expires, so this verdict is kept
    until the token's ``exp``, for at most ``size`` tokens (least recently used dropped);
    revocation and disabled accounts are checked on every request after it, by
    :class:`~krakenstream.users.access.AccessCache`. Refusals are
    not kept: a forged or expired token is checked each time and costs what it always did.
    """

    def __init__(self, verify: Callable[[str], Claims], *, size: int = 4096,
                 clock: Callable[[], float] = time.time) -> None:
        self._verify = verify
        self._clock = clock
        self.size = size
        self._known: OrderedDict[str, tuple[float, Claims]] = OrderedDict()

    def verify(self, token: str) -> Claims:
        known = self._known.get(token)
        if known is not None:
            if known[0] > self._clock():
                self._known.move_to_end(token)
                return known[1]
            del self._known[token]
        claims = self._verify(token)
        self._known[token] = (claims.expires_at.timestamp(), claims)
        if len(self._known) > self.size:
            self._known.popitem(last=False)
        return claims
