"""``core/numbers.py``: prices and quantities as exact scaled integers, in and out of text."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krakenstream.core.numbers import (
    InexactValue,
    decimals_of,
    format_scaled,
    parse_scaled,
    pow10,
    scale_any,
    to_decimal,
)


def test_json_numbers_of_each_kind_scale_exactly() -> None:
    assert scale_any(29430.3, 1) == 294303
    assert scale_any(0.00000001, 8) == 1
    assert scale_any(7, 2) == 700
    assert scale_any(Decimal("0.1234"), 4) == 1234
    assert scale_any(Decimal("1E+2"), 0) == 100
    assert pow10(8) == 100_000_000


@pytest.mark.parametrize("value,precision", [
    (29430.35, 1),            # one decimal too many
    (0.1 + 0.2, 1),           # the double is not 0.3's
    (Decimal("0.12345"), 4),
    (Decimal("NaN"), 2),
    (Decimal("Infinity"), 2),
    (829452312479088.3, 1),   # past 10**15 two decimals share a double: refused
    ("1.5", 1),               # text is not a decoded JSON number
    (None, 0),
])
def test_values_that_would_lose_or_invent_digits_are_refused(value: object,
                                                             precision: int) -> None:
    with pytest.raises(InexactValue):
        scale_any(value, precision)


def test_fixed_point_text_has_exactly_the_precision() -> None:
    assert format_scaled(294303, 1) == "29430.3"
    assert format_scaled(5, 8) == "0.00000005"
    assert format_scaled(-5, 3) == "-0.005"
    assert format_scaled(42, 0) == "42"
    assert parse_scaled("29430.3", 1) == 294303
    assert parse_scaled("1.5e-3", 4) == 15  # any exact decimal text
    assert to_decimal(294303, 1) == Decimal("29430.3")
    assert str(to_decimal(10**30 + 7, 8)) == "10000000000000000000000.00000007"
    assert str(to_decimal(5, 8)) == "5E-8"
    for bad in ("abc", "0.05"):
        with pytest.raises(InexactValue):
            parse_scaled(bad, 1)


@given(st.integers(-10**38, 10**38), st.integers(0, 12))
def test_text_round_trips(n: int, precision: int) -> None:
    """Up to 38 digits (a DECIMAL(38) column's): past 28 the default decimal context would
    round silently."""
    text = format_scaled(n, precision)
    assert parse_scaled(text, precision) == n
    assert to_decimal(n, precision) == Decimal(text)


def test_decimals_a_number_needs() -> None:
    assert decimals_of(0.25) == 2
    assert decimals_of(1e-8) == 8
    assert decimals_of(100.0) == 0
    assert decimals_of(7) == 0
    assert decimals_of(Decimal("2.50")) == 1  # trailing zeros do not count
    with pytest.raises(InexactValue):
        decimals_of("0.25")
