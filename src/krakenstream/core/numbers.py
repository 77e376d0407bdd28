"""Exact fixed-point numbers: a price or quantity is an ``int`` scaled by ``10**precision``.

Kraken's checksum writes each value in fixed point with exactly the pair's precision, the
point removed and leading zeros stripped: for a scaled integer that is simply ``str(n)``.
Keeping books in scaled integers makes the checksum token free and comparisons exact.
"""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation

#: a float's scaled value is trusted below 10**15 only: any decimal of at most 15 significant
#: digits comes back exactly from its nearest double (DBL_DIG), and then ``round(f * scale)``
#: errs by under 0.25. Between 10**15 and 2**53 two decimals can share a double
#: (829452312479088.3 and .2 at 0.1), so the check by dividing back passes on a wrong value;
#: such values take the exact path.
_FLOAT_EXACT_LIMIT = 10**15

#: arithmetic wide enough for every value we keep exactly (DECIMAL(38) columns included): the
#: default context's 28 digits would round a longer value, silently
EXACT = Context(prec=80)

_POW10: tuple[int, ...] = tuple(int(10**i) for i in range(0, 40))


class InexactValue(ValueError):
    """A value that is not an exact multiple of ``10**-precision`` (or not a number)."""


def pow10(precision: int) -> int:
    return _POW10[precision]


def scale_float(value: float, scale: int) -> int:
    """``value * scale`` as an exact int, or raise :class:`InexactValue`.

    ``round(value * scale)`` is exact only if the JSON text meant that integer: check it by
    dividing back (IEEE division is correctly rounded, and so is the JSON decoder, so the two
    agree exactly when the text was the fixed-point value at this precision), below
    ``_FLOAT_EXACT_LIMIT`` where no two such values share a double.
    """
    n = round(value * scale)
    if n / scale != value or not -_FLOAT_EXACT_LIMIT < n < _FLOAT_EXACT_LIMIT:
        raise InexactValue(value)
    return n


def scale_decimal(value: Decimal, precision: int) -> int:
    """An exact Decimal scaled to an int; raises :class:`InexactValue` if digits would be lost."""
    try:
        if not value.is_finite():
            raise InexactValue(value)
        scaled = value.scaleb(precision, EXACT)
        n = int(scaled)
    except (InvalidOperation, OverflowError, ValueError):
        raise InexactValue(value) from None
    if n != scaled:
        raise InexactValue(value)
    return n


def scale_any(value: object, precision: int) -> int:
    """Scale a decoded JSON number (int, float or Decimal) exactly."""
    if type(value) is float:
        return scale_float(value, _POW10[precision])
    if type(value) is int:
        return value * _POW10[precision]
    if isinstance(value, Decimal):
        return scale_decimal(value, precision)
    raise InexactValue(value)


def to_decimal(n: int, precision: int) -> Decimal:
    """The exact Decimal of a scaled int, with exactly ``precision`` decimals."""
    return Decimal(n).scaleb(-precision, EXACT)


def format_scaled(n: int, precision: int) -> str:
    """Fixed-point text with exactly ``precision`` decimals: ``(294303, 1) -> '29430.3'``."""
    if precision == 0:
        return str(n)
    sign = "-" if n < 0 else ""
    digits = str(abs(n)).rjust(precision + 1, "0")
    return f"{sign}{digits[:-precision]}.{digits[-precision:]}"


def parse_scaled(text: str, precision: int) -> int:
    """Inverse of :func:`format_scaled`; accepts any exact decimal text (``'1.5e-3'`` too)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InexactValue(text) from None
    return scale_decimal(value, precision)


def decimals_of(value: object) -> int:
    """How many decimals a decoded JSON number needs (used to infer a precision)."""
    if isinstance(value, Decimal):
        d = value
    elif type(value) is float:
        d = Decimal(repr(value))
    elif type(value) is int:
        return 0
    else:
        raise InexactValue(value)
    exp = d.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0
