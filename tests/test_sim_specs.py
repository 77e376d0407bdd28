"""The simulator's instruments: Kraken's precisions, guessed and synthetic pairs."""

from __future__ import annotations

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
    assert len({s.symbol for s in specs}) == 25
    assert len({(s.price_precision, s.qty_precision) for s in specs}) >= 8
    market = Market(specs, seed=1)
    for spec in specs:
        book = market.book(spec.symbol)
        assert len(book.bids) >= 1000 and len(book.asks) >= 1000, spec


def test_increment_is_the_float_kraken_writes() -> None:
    assert increment(1) == 0.1 and increment(8) == 1e-08 and increment(0) == 1.0
    assert repr(increment(9)) == "1e-09"
