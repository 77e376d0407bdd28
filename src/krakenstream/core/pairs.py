"""Kraken pair names and book depths: the one syntax the feed, the simulator, the daemon and
the CLI all check.

A pair is Kraken v2's ``BASE/QUOTE`` symbol: each side one to sixteen upper-case letters,
digits and dots, starting with a letter or a digit (``BTC/USD``, ``1INCH/USD``,
``ETH2.S/ETH``). This is the widest syntax that is still safe, and the one kept when four
copies had drifted apart:

- no narrower, because Kraken lists symbols with leading digits and with dots: a stricter
  copy (the simulator's ``[A-Z0-9]{1,12}``) refused pairs the exchange really has;
- no wider, because a pair name travels into subscribe requests, log lines, Redis keys, URLs
  and terminals: markup, spaces, slashes beyond the one, control and non-ASCII characters
  never name a Kraken pair, and refusing them here keeps them out of all of those.

Lower case is not another pair: people type ``eth-usd`` or ``eth/usd``, so
:func:`normalize_pair` upper-cases and turns ``-`` into ``/`` before checking, while
:func:`check_pair` takes only the exchange's own spelling.

A **pattern** names pairs by what Kraken lists: ``*`` (every pair), ``*/USD`` (every pair
quoted in USD), ``BTC/*`` (every pair with BTC as its base). A side is either a whole name or
``*``: nothing finer (``BT*``) — a pattern is meant to follow a market, not to search one.
:func:`resolve` takes the listing (the instrument channel's pairs and their status) and
answers the online pairs a pattern matches; it is pure, the feed's pool calls it each time
the listing changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ..errors import InputError, InvalidPair

#: one side of a pair, in the exchange's spelling
_SIDE = r"[A-Z0-9][A-Z0-9.]{0,15}"
#: the one pair syntax (see the module docstring for why exactly this)
PAIR_SYNTAX = re.compile(rf"{_SIDE}/{_SIDE}")
#: ``*``, ``*/*``, ``*/QUOTE``, ``BASE/*`` (see the module docstring)
PATTERN_SYNTAX = re.compile(rf"\*(?:/\*)?|\*/{_SIDE}|{_SIDE}/\*")

# What a person may type, as the HTTP API's schema declares it: the syntax above with either
# case and ``/`` or ``-`` between the sides, exactly what normalize_pair and
# normalize_selector accept (surrounding blanks aside, which they trim). Written for JSON
# Schema's ``pattern`` (ECMA-262: no flags, so both cases are spelt out, and anchored: a
# pattern there matches anywhere in the text); Python's re reads it the same way.
_TYPED_SIDE = _SIDE.replace("A-Z", "A-Za-z")
_TYPED_PAIR = rf"{_TYPED_SIDE}[/-]{_TYPED_SIDE}"
#: a pair as typed (``eth-usd``, ``ETH/USD``): what :func:`normalize_pair` reads
PAIR_INPUT_PATTERN = rf"^{_TYPED_PAIR}$"
#: a pair or a pattern as typed (``*-eur``, ``btc/*``): what :func:`normalize_selector` reads
SELECTOR_INPUT_PATTERN = (
    rf"^(?:{_TYPED_PAIR}|\*(?:[/-]\*)?|\*[/-]{_TYPED_SIDE}|{_TYPED_SIDE}[/-]\*)$")
#: the status Kraken's instrument channel gives a pair that trades normally
ONLINE = "online"
#: the book depths Kraken's v2 ``book`` channel accepts
VALID_DEPTHS = (10, 25, 100, 500, 1000)


def is_pair(text: object) -> bool:
    """Whether ``text`` is a pair in the exchange's spelling (``BTC/USD``)."""
    return isinstance(text, str) and PAIR_SYNTAX.fullmatch(text) is not None


def check_pair(pair: str) -> str:
    """``pair`` itself if it is in the exchange's spelling, else :class:`InvalidPair`."""
    if not is_pair(pair):
        raise InvalidPair(f"{pair!r} is not a pair of the form BASE/QUOTE (e.g. BTC/USD)")
    return pair


def spell_pair(text: str) -> str:
    """The exchange's spelling of what a person typed (``" eth-usd "`` → ``ETH/USD``),
    unchecked: for matching names a daemon sent back, where refusing is not ours to do."""
    return text.strip().upper().replace("-", "/")


def normalize_pair(text: str) -> str:
    """``eth-usd``, ``eth/usd``, ``ETH/USD`` (and ``eth%2Fusd`` once a router decoded it) →
    ``ETH/USD``, or :class:`InvalidPair` naming what was given."""
    pair = spell_pair(text)
    if not is_pair(pair):
        raise InvalidPair(f"{text!r} is not a pair like ETH/USD or ETH-USD")
    return pair


def is_pattern(text: object) -> bool:
    """Whether ``text`` is a pattern in the exchange's spelling (``*/USD``)."""
    return isinstance(text, str) and PATTERN_SYNTAX.fullmatch(text) is not None


def normalize_selector(text: str) -> str:
    """A pair or a pattern as a person typed it (``eth-usd``, ``*-eur``, ``btc/*``) in the
    exchange's spelling; ``*/*`` is ``*``. :class:`InvalidPair` names what was given (a
    text without ``*`` gets :func:`normalize_pair`'s own message)."""
    if "*" not in text:
        return normalize_pair(text)
    spelled = spell_pair(text)
    if not is_pattern(spelled):
        raise InvalidPair(f"{text!r} is not a pattern like */USD, BTC/* or *")
    return "*" if spelled == "*/*" else spelled


def matches(pattern: str, pair: str) -> bool:
    """Whether ``pair`` is one the pattern (or the plain pair) names."""
    if pattern == "*" or pattern == pair:
        return True
    base, _, quote = pattern.partition("/")
    pb, _, pq = pair.partition("/")
    return (base == "*" and quote == pq) or (quote == "*" and base == pb)


def resolve(patterns: Iterable[str], listing: Mapping[str, str]) -> list[str]:
    """The pairs of ``listing`` (symbol → status, in the exchange's order) that are online
    and match one of ``patterns``, in the listing's order."""
    wanted = list(patterns)
    return [pair for pair, status in listing.items()
            if status == ONLINE and any(matches(p, pair) for p in wanted)]


def check_depth(depth: int) -> int:
    """``depth`` if Kraken's book channel accepts it; refused before a frame is sent."""
    if depth not in VALID_DEPTHS:
        raise InputError(
            f"book depth {depth} is not supported",
            hint=f"use one of {', '.join(map(str, VALID_DEPTHS))}",
        )
    return depth
