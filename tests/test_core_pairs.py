"""The one pair syntax and the depths Kraken accepts (core/pairs.py)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krakenstream.core.pairs import (
    PAIR_INPUT_PATTERN,
    SELECTOR_INPUT_PATTERN,
    VALID_DEPTHS,
    check_depth,
    check_pair,
    is_pair,
    is_pattern,
    matches,
    normalize_pair,
    normalize_selector,
    resolve,
    spell_pair,
)
from krakenstream.errors import InputError, InvalidPair


def test_pair_names_that_kraken_could_never_list_are_refused() -> None:
    for good in ("BTC/USD", "1INCH/USD", "ETH2.S/ETH", "SYN0001/USD", "A" * 16 + "/USD"):
        assert check_pair(good) == good
        assert is_pair(good)
    for bad in ("[/]", "ÉTH/USD", "\x00/USD", "\x1b[31mX/USD", "btc/usd", "BTC/USD/X",
                "BTC/ USD", "", "/USD", "A" * 17 + "/USD", ".ETH/USD", "BTC/USD\n"):
        with pytest.raises(InvalidPair, match="is not a pair of the form BASE/QUOTE"):
            check_pair(bad)
        assert not is_pair(bad)
    assert not is_pair(None) and not is_pair(b"BTC/USD")


def test_normalize_pair_takes_what_people_type() -> None:
    assert normalize_pair("eth-usd") == "ETH/USD" == normalize_pair(" ETH/USD ")
    assert normalize_pair("eth/usd") == "ETH/USD"
    for bad in ("ETHUSD", "ETH/USD/X", "", "E TH/USD", "eth-usd-x", "<b>/USD"):
        with pytest.raises(InvalidPair) as info:
            normalize_pair(bad)
        assert str(info.value) == f"{bad!r} is not a pair like ETH/USD or ETH-USD"


#: texts near the pair syntax: both cases, digits, its punctuation and what it refuses
_TYPED = st.text(alphabet="aZ09.-/*_ %é", max_size=40) | st.from_regex(
    PAIR_INPUT_PATTERN, fullmatch=True) | st.from_regex(SELECTOR_INPUT_PATTERN, fullmatch=True)


def _reads(normalize: object, text: str) -> bool:
    try:
        normalize(text)  # type: ignore[operator]
    except InvalidPair:
        return False
    return True


@given(_TYPED)
def test_the_schema_patterns_are_what_normalize_reads(text: str) -> None:
    """The patterns the HTTP schema declares (an ECMA-262 regex, which Python reads alike)
    match exactly the texts normalize_pair and normalize_selector accept, blanks around
    aside (they trim them; the patterns leave them out): a client that sends what the schema
    allows is never refused, nor is one kept from what the daemon accepts."""
    if text != text.strip():
        return
    assert (re.search(PAIR_INPUT_PATTERN, text) is not None) == _reads(normalize_pair, text)
    assert (re.search(SELECTOR_INPUT_PATTERN, text) is not None) == _reads(
        normalize_selector, text)


def test_spell_pair_only_spells() -> None:
    assert spell_pair(" eth-usd ") == "ETH/USD"
    assert spell_pair("BTC/USD") == "BTC/USD"
    assert spell_pair("no such pair") == "NO SUCH PAIR"  # checking is not its job


def test_depths() -> None:
    assert VALID_DEPTHS == (10, 25, 100, 500, 1000)
    for depth in VALID_DEPTHS:
        assert check_depth(depth) == depth
    for bad in (0, 5, 20, 1001, -10):
        with pytest.raises(InputError, match=f"book depth {bad} is not supported") as info:
            check_depth(bad)
        assert info.value.hint == "use one of 10, 25, 100, 500, 1000"


def test_the_simulator_takes_every_pair_the_feed_takes() -> None:
    from krakenstream.sim.market import guess_spec

    for good in ("1INCH/USD", "ETH2.S/ETH", "SYN0001/USD"):
        assert guess_spec(good).symbol == good
    with pytest.raises(InvalidPair, match="not a pair of the form BASE/QUOTE: 'btc-usd'"):
        guess_spec("btc-usd")


def test_patterns_name_pairs_by_what_is_listed() -> None:
    assert [normalize_selector(t) for t in ("*", "*/*", "*-usd", " btc/* ", "eth-usd")] == [
        "*", "*", "*/USD", "BTC/*", "ETH/USD"]
    for bad in ("**", "*/", "/*", "BT*/USD", "*/US D", "*/USD/*", "*/<b>"):
        with pytest.raises(InvalidPair, match="is not a pattern like"):
            normalize_selector(bad)
    with pytest.raises(InvalidPair, match="'ETHUSD' is not a pair like ETH/USD or ETH-USD"):
        normalize_selector("ETHUSD")  # no star: the pair's own message
    assert is_pattern("*/USD") and is_pattern("BTC/*") and not is_pattern("BTC/USD")
    assert not is_pattern("*/usd")  # the exchange's spelling only
    assert matches("*", "SYN0001/EUR") and matches("*/EUR", "BTC/EUR")
    assert matches("BTC/*", "BTC/USDT") and not matches("BTC/*", "WBTC/USD")
    assert not matches("*/USD", "BTC/USDT") and not matches("*/USD", "USD/JPY")
    assert matches("ETH/USD", "ETH/USD") and not matches("ETH/USD", "ETH/EUR")
    listing = {"BTC/USD": "online", "ETH/USD": "maintenance", "BTC/EUR": "online",
               "OLD/USD": "delisted", "SOL/USD": "online", "ETH/BTC": "cancel_only"}
    assert resolve(["*/USD"], listing) == ["BTC/USD", "SOL/USD"]  # online only, in order
    assert resolve(["BTC/*", "*/EUR"], listing) == ["BTC/USD", "BTC/EUR"]
    assert resolve(["*"], listing) == ["BTC/USD", "BTC/EUR", "SOL/USD"]
    assert resolve([], listing) == []
