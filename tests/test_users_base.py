"""Email normalisation: the single rule both stores use to decide that two addresses are one."""

from __future__ import annotations

import pytest

from krakenstream.errors import InputError
from krakenstream.users import Email, normalize_email
from krakenstream.users.base import MAX_EMAIL_LENGTH


@pytest.mark.parametrize("raw, address, key", [
    ("alice@example.com", "alice@example.com", "alice@example.com"),
    ("  Alice@EXAMPLE.com\t\n", "Alice@example.com", "alice@example.com"),
    ("ÜBER@Exämple.COM", "ÜBER@exämple.com", "über@exämple.com"),
    ("ü@xn--exmple-cua.com", "ü@exämple.com", "ü@exämple.com"),  # punycode = Unicode domain
    ("cafe\u0301@example.com", "caf\u00e9@example.com", "caf\u00e9@example.com"),  # NFC
    ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk",
     "first.last+tag@sub.example.co.uk"),
    ("'or'1'='1'--@example.com", "'or'1'='1'--@example.com", "'or'1'='1'--@example.com"),
])
def test_normalised(raw: str, address: str, key: str) -> None:
    assert normalize_email(raw) == Email(address=address, key=key)


@pytest.mark.parametrize("raw, match", [
    ("", "empty"),
    ("   ", "empty"),
    ("plainaddress", "@-sign"),
    ("@example.com", "before the @-sign"),
    ("user@", "after the @-sign"),
    ("user@localhost", "period"),
    ("user@example..com", "invalid email"),
    (".user@example.com", "period"),
    ("us er@example.com", "SPACE"),
    ('"quoted"@example.com', "Quoting"),
    ("user@[127.0.0.1]", "bracketed IP"),
    ("user\u202e@example.com", "unsafe"),  # right-to-left override: spoofs the display
    ("user@example.com\x00", "invalid email"),
])
def test_rejected_with_a_reason(raw: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        normalize_email(raw)


def test_length_limit() -> None:
    domain = "@" + ".".join(["d" * 60] * 3) + ".com"  # 188 characters
    fits = "u" * (MAX_EMAIL_LENGTH - len(domain) - 2) + "xy" + domain
    assert len(fits) == MAX_EMAIL_LENGTH
    assert normalize_email(fits).address == fits
    with pytest.raises(InputError, match=f"255 characters long; the maximum is {MAX_EMAIL_LENGTH}"):
        normalize_email("z" + fits)
    long_local = "a" * 64
    with pytest.raises(InputError, match=f"maximum is {MAX_EMAIL_LENGTH}"):
        normalize_email(long_local * 4 + domain)
    with pytest.raises(InputError, match="maximum"):
        normalize_email("a" * 1_000_000 + "@example.com")


def test_not_a_string() -> None:
    with pytest.raises(InputError, match="string"):
        normalize_email(None)  # type: ignore[arg-type]
