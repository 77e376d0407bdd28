"""Which pairs a feed tracks: the pairs named, and the listed pairs its patterns match.

Pure: no asyncio, no clock. Kraken's instrument channel says what it lists — a ``snapshot``
is the whole list, an ``update`` changes the pairs it names — and :class:`Listing` keeps that
and answers what changed. :class:`Selection` holds what was asked for: pairs by name (always
tracked, listed or not: a pair Kraken refuses shows its error) and patterns (``*``, ``*/USD``,
``BTC/*``, see :mod:`krakenstream.core.pairs`), which take the listed pairs whose status is
``online``. A pair a pattern brought in is dropped when Kraken delists it or it leaves
``online`` (maintenance, cancel_only...: its book is not the market's then, and the history
says so with a gap), and picked up again when it is back. A pair untracked by name stays out
even if a pattern matches it, until it or a pattern matching it is tracked again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..core.events import Instrument
from ..core.pairs import ONLINE, is_pair, is_pattern, matches, resolve
from ..errors import InvalidPair


@dataclass(frozen=True, slots=True)
class ListingChange:
    """A pair's status changed in the listing (``None``: not listed)."""

    pair: str
    old: str | None
    new: str | None

    @property
    def went_online(self) -> bool:
        return self.new == ONLINE and self.old != ONLINE

    @property
    def went_offline(self) -> bool:
        return self.old == ONLINE and self.new != ONLINE


class Listing:
    """The pairs Kraken lists and their status, as the instrument channel last said."""

    def __init__(self) -> None:
        #: symbol → status, in the exchange's order
        self.status: dict[str, str] = {}
        #: a snapshot has been seen (before it, a pattern matches nothing yet)
        self.known = False

    def apply(self, event: Instrument) -> list[ListingChange]:
        """Take an instrument frame; returns what changed, in the listing's order.

        Symbols that are not pairs in the exchange's spelling are left out (nothing could
        subscribe them)."""
        pairs = {ip.symbol: ip.status for ip in event.pairs if is_pair(ip.symbol)}
        old = self.status
        if event.type == "snapshot":
            new = pairs
            self.known = True
        else:
            new = {**old, **pairs}
        changes = [ListingChange(p, old.get(p), s) for p, s in new.items() if old.get(p) != s]
        changes.extend(ListingChange(p, s, None) for p, s in old.items() if p not in new)
        self.status = new
        return changes

    def online(self) -> list[str]:
        return [p for p, s in self.status.items() if s == ONLINE]


class Selection:
    """What to track: pairs by name, patterns over the listing, minus those untracked by
    name. ``owns`` (a shard's rule) filters what the patterns bring in."""

    def __init__(self, owns: Callable[[str], bool] | None = None) -> None:
        self.named: dict[str, None] = {}
        self.patterns: dict[str, None] = {}
        self.excluded: set[str] = set()
        self.listing = Listing()
        self.owns = owns

    def add(self, selector: str) -> None:
        """Track a pair or a pattern (in the exchange's spelling: ``ETH/USD``, ``*/USD``)."""
        if is_pattern(selector):
            self.patterns[selector] = None
            self.excluded = {p for p in self.excluded if not matches(selector, p)}
        elif is_pair(selector):
            self.named[selector] = None
            self.excluded.discard(selector)
        else:
            raise InvalidPair(
                f"{selector!r} is not a pair like ETH/USD or a pattern like */USD, BTC/* or *")

    def remove(self, selector: str) -> bool:
        """Stop tracking a pair or a pattern; False if it was not asked for at all."""
        if is_pattern(selector):
            if selector not in self.patterns:
                return False
            del self.patterns[selector]
            return True
        known = selector in self.named or self.pattern_for(selector) is not None
        self.named.pop(selector, None)
        if self.pattern_for(selector) is not None:
            self.excluded.add(selector)
        return known

    def pattern_for(self, pair: str) -> str | None:
        """The first pattern that matches ``pair``, or None."""
        return next((p for p in self.patterns if matches(p, pair)), None)

    def with_selector(self, selector: str) -> Selection:
        """A copy with ``selector`` added (what tracking it would make the target)."""
        other = Selection(self.owns)
        other.named, other.patterns = dict(self.named), dict(self.patterns)
        other.excluded, other.listing = set(self.excluded), self.listing
        other.add(selector)
        return other

    def target(self) -> list[str]:
        """Every pair to track now: the named ones, then the listed online pairs the
        patterns match (in the listing's order)."""
        out = dict(self.named)
        owns, excluded = self.owns, self.excluded
        for pair in resolve(self.patterns, self.listing.status):
            if pair not in excluded and (owns is None or owns(pair)):
                out.setdefault(pair, None)
        return list(out)
