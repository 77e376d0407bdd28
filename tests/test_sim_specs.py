"""The simulator's instruments: Kraken's precisions, guessed and synthetic pairs."""

from __future__ import annotations

from collections import Counter

import pytest

from krakenstream.errors import InvalidPair
from krakenstream.sim.market import Market
from krakenstream.sim.specs import DEFAULT_PAIRS, guess_spec, increment, synthetic_specs


def test_default_precisions_are_kraken_s() -> None:
    precisions = {s.symbol: (s.price_precision, s.qty_precision) for s in DEFAULT_PAIRS}
    assert precisions["BTC/USD"] == (1, 8)
    assert precisions["ETH/USD"] == (2, 8)
    assert precisions["SOL/USD"] == (2, 8)
    assert precisions["DOGE/USD"] == (7, 8)
    assert precisions["PEPE/USD"] == (9, 2)
    assert precisions["XRP/USD"] == (5, 8)
    assert precisions["ADA/USD"] == (6, 8)
    assert precisions["LTC/USD"] == (2, 8)
    assert precisions["ETH/BTC"] == (5, 8)


def test_guessed_and_synthetic_specs() -> None:
    assert guess_spec("BTC/USD") is DEFAULT_PAIRS[0]
    atom = guess_spec("ATOM/USD")
    # about six significant digits, as Kraken's precisions give
    assert atom.qty_precision == 8 and 10**4 <= atom.price * 10**atom.price_precision < 10**7
    shib = guess_spec("SHIB/USD")
    assert shib.qty_precision == 2 and shib.price_precision >= 9
    unknown = guess_spec("ZZZ/EUR")
    assert unknown == guess_spec("ZZZ/EUR")  # stable
    for bad in ("BTCUSD", "btc/usd", "BTC/USD/EUR", ""):
        with pytest.raises(InvalidPair):
            guess_spec(bad)
    specs = synthetic_specs(25, seed=1)
    assert [s.symbol for s in specs[:2]] == ["SYN0001/USD", "SYN0002/USD"]
    usd = [s for s in specs if s.quote == "USD"]
    assert len({s.symbol for s in usd}) == 25 == len(usd)  # N pairs SYNnnnn/USD
    assert len({s.symbol for s in specs}) == len(specs)
    assert len({(s.price_precision, s.qty_precision) for s in specs}) >= 8
    market = Market(specs, seed=1)
    for spec in specs:
        book = market.book(spec.symbol)
        assert len(book.bids) >= 1000 and len(book.asks) >= 1000, spec


def test_increment_is_the_float_kraken_writes() -> None:
    assert increment(1) == 0.1 and increment(8) == 1e-08 and increment(0) == 1.0
    assert repr(increment(9)) == "1e-09"


def test_the_synthetic_listing_is_as_varied_as_krakens() -> None:
    """Some bases in other quotes, some pairs not online: what patterns (*/USD) look at."""
    specs = synthetic_specs(200, seed=1)
    quotes = Counter(s.quote for s in specs)
    assert quotes == {"USD": 200, "EUR": 20, "USDT": 10, "BTC": 4}
    offline = {s.symbol: s.status for s in specs if s.status != "online"}
    assert offline["SYN0010/USD"] == "maintenance" and offline["SYN0030/USD"] == "cancel_only"
    assert offline["SYN0050/USD"] == "post_only" and offline["SYN0070/USD"] == "delisted"
    assert sum(1 for p in offline if p.endswith("/USD")) == 10
    assert offline["SYN0033/EUR"] == "cancel_only"
    assert synthetic_specs(200, seed=1) == specs  # stable
    market = Market(specs, seed=1)
    listed = {p["symbol"]: p["status"] for p in market.instrument_data()["pairs"]}
    assert listed["SYN0010/USD"] == "maintenance" and listed["SYN0001/BTC"] == "online"
    for spec in specs:
        if spec.quote == "BTC":  # a base quoted in BTC still has six significant digits
            assert 10**4 <= spec.price * 10**spec.price_precision < 10**7, spec
