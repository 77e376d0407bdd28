"""The pairs Kraken refused, as the orderbook role keeps them listed (daemon/refused.py)."""

from __future__ import annotations

from krakenstream.daemon.refused import RefusedPairs
from krakenstream.feed.status import PairState


def test_the_newest_are_listed_for_keep_seconds() -> None:
    refused = RefusedPairs(keep=60.0, limit=3)
    for i in range(5):
        refused.add(f"Z{i}/USD", f"Currency pair not supported Z{i}/USD", at=1000.0 + i)
    assert refused.total == 5 and len(refused) == 3
    assert [r.pair for r in refused.listed(1010.0)] == ["Z2/USD", "Z3/USD", "Z4/USD"]
    st = refused.statuses(1010.0)["Z3/USD"]
    assert st.state is PairState.ERROR and st.since == 1003.0
    assert st.error == "Currency pair not supported Z3/USD"
    assert [r.pair for r in refused.listed(1063.5)] == ["Z4/USD"]  # the others expired
    assert refused.discard("Z4/USD") and not refused.discard("Z4/USD")
    assert refused.listed(1064.0) == [] and refused.total == 5


def test_refused_again_moves_to_the_newest_and_keep_0_lists_none() -> None:
    refused = RefusedPairs(keep=60.0, limit=2)
    refused.add("A/USD", "no", at=1.0)
    refused.add("B/USD", "no", at=2.0)
    refused.add("A/USD", "no again", at=3.0)
    refused.add("C/USD", "no", at=4.0)
    assert [(r.pair, r.error) for r in refused.listed(5.0)] == [("A/USD", "no again"),
                                                                ("C/USD", "no")]
    none = RefusedPairs(keep=0.0)
    none.add("A/USD", "no", at=1.0)
    assert none.total == 1 and none.listed(1.0) == [] and "A/USD" not in none
