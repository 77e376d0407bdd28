"""Which pairs a feed tracks (feed/selection.py): the listing and the selection over it."""

from __future__ import annotations

import pytest

from krakenstream.core.events import Instrument, InstrumentPair
from krakenstream.errors import InvalidPair
from krakenstream.feed.selection import Listing, ListingChange, Selection


def frame(kind: str, **statuses: str) -> Instrument:
    """An instrument frame; keyword names use ``_`` for ``/`` (``BTC_USD="online"``)."""
    return Instrument(kind, [  # type: ignore[arg-type]
        InstrumentPair(s.replace("_", "/"), 1, 8, None, None, status)
        for s, status in statuses.items()])


def test_a_snapshot_is_the_whole_listing_an_update_changes_what_it_names() -> None:
    listing = Listing()
    assert not listing.known and listing.online() == []
    changes = listing.apply(frame("snapshot", BTC_USD="online", ETH_USD="maintenance"))
    assert listing.known
    assert changes == [ListingChange("BTC/USD", None, "online"),
                       ListingChange("ETH/USD", None, "maintenance")]
    assert changes[0].went_online and not changes[1].went_online
    assert listing.online() == ["BTC/USD"]
    # an update names only what changed: the rest stays listed
    changes = listing.apply(frame("update", ETH_USD="online", BTC_USD="delisted"))
    assert [(c.pair, c.went_online, c.went_offline) for c in changes] == [
        ("BTC/USD", False, True), ("ETH/USD", True, False)]
    assert listing.online() == ["ETH/USD"]
    assert listing.apply(frame("update", ETH_USD="online")) == []  # nothing new
    # a new snapshot: what it leaves out is no longer listed
    changes = listing.apply(frame("snapshot", SOL_USD="online"))
    assert ListingChange("ETH/USD", "online", None) in changes
    assert changes[-1].went_offline and listing.online() == ["SOL/USD"]


def test_symbols_that_are_not_pairs_are_left_out() -> None:
    listing = Listing()
    listing.apply(Instrument("snapshot", [
        InstrumentPair("BTC/USD", 1, 8, None, None, "online"),
        InstrumentPair("<b>bad</b>", 1, 8, None, None, "online"),
        InstrumentPair("NOSLASH", 1, 8, None, None, "online")]))
    assert listing.online() == ["BTC/USD"]


def test_named_pairs_and_patterns_make_the_target() -> None:
    sel = Selection()
    for s in ("ETH/USD", "*/EUR", "NEW/USD"):
        sel.add(s)
    assert sel.target() == ["ETH/USD", "NEW/USD"]  # patterns wait for the listing
    sel.listing.apply(frame("snapshot", BTC_EUR="online", ETH_USD="online",
                            ETH_EUR="cancel_only", SOL_EUR="online"))
    # named pairs first, listed or not; then the online pairs the patterns match
    assert sel.target() == ["ETH/USD", "NEW/USD", "BTC/EUR", "SOL/EUR"]
    assert sel.pattern_for("SOL/EUR") == "*/EUR" and sel.pattern_for("ETH/USD") is None
    sel.listing.apply(frame("update", ETH_EUR="online", SOL_EUR="delisted"))
    assert sel.target() == ["ETH/USD", "NEW/USD", "BTC/EUR", "ETH/EUR"]
    with pytest.raises(InvalidPair):
        sel.add("eth-usd")  # the edges normalise; the selection takes the exchange's spelling


def test_untracking_a_pair_a_pattern_brought_keeps_it_out_until_asked_again() -> None:
    sel = Selection()
    sel.add("*/EUR")
    sel.listing.apply(frame("snapshot", BTC_EUR="online", ETH_EUR="online"))
    assert sel.remove("BTC/EUR")
    assert sel.target() == ["ETH/EUR"]
    sel.listing.apply(frame("update", BTC_EUR="online"))
    assert sel.target() == ["ETH/EUR"]  # still out
    sel.add("*/EUR")  # the pattern asked for again brings everything back
    assert sel.target() == ["BTC/EUR", "ETH/EUR"]
    assert sel.remove("ETH/EUR")
    sel.add("ETH/EUR")  # or the pair by name
    assert sel.target() == ["ETH/EUR", "BTC/EUR"]
    assert not sel.remove("Q/USD") and not sel.remove("*/JPY")
    assert sel.remove("*/EUR")
    assert sel.target() == ["ETH/EUR"]


def test_a_shard_takes_only_its_pattern_pairs() -> None:
    sel = Selection(owns=lambda p: p.startswith("A"))
    sel.add("*")
    sel.add("BTC/USD")  # named: the caller already sharded it
    sel.listing.apply(frame("snapshot", ADA_USD="online", BTC_EUR="online", AVAX_USD="online"))
    assert sel.target() == ["BTC/USD", "ADA/USD", "AVAX/USD"]


def test_with_selector_is_a_copy() -> None:
    sel = Selection()
    sel.add("ETH/USD")
    other = sel.with_selector("BTC/USD")
    assert other.target() == ["ETH/USD", "BTC/USD"] and sel.target() == ["ETH/USD"]
