"""Email normalisation: the single rule both stores use to decide that two addresses are one."""

from __future__ import annotations

import unicodedata

import pytest

from krakenstream.errors import InputError
from krakenstream.users import Email, normalize_email
from krakenstream.users.base import MAX_EMAIL_LENGTH, check_single_script, email_key, scripts_of


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


# -- look-alikes: one key for one address, one script per local part ---------------------------


@pytest.mark.parametrize("look_alike, real", [
    ("\uff4dail@example.com", "mail@example.com"),  # fullwidth m
    ("\ufb01le@example.com", "file@example.com"),  # the fi ligature
    ("stra\u00dfe@example.com", "strasse@example.com"),  # sharp s
    ("\u212bngstr\u00f6m@example.com", "\u00e5ngstr\u00f6m@example.com"),  # Angstrom sign
    ("\U0001d41a\U0001d41d\U0001d426\U0001d422\U0001d427@example.com",
     "admin@example.com"),  # mathematical bold letters
])
def test_look_alikes_share_a_key(look_alike: str, real: str) -> None:
    assert normalize_email(look_alike).key == normalize_email(real).key == email_key(real)
    # kept as typed for display (in NFC, as every address is)
    assert normalize_email(look_alike, new=True).address == unicodedata.normalize("NFC", look_alike)


@pytest.mark.parametrize("mixed, scripts", [
    ("ma\u0456l@example.com", "Cyrillic, Latin"),
    ("p\u0430ypal@example.com", "Cyrillic, Latin"),
    ("\u03bfpen@example.com", "Greek, Latin"),
    ("\u0561dmin@example.com", "Armenian, Latin"),
])
def test_mixed_scripts_refused_for_new_addresses_only(mixed: str, scripts: str) -> None:
    with pytest.raises(InputError, match=f"several scripts \\({scripts}\\)") as info:
        normalize_email(mixed, new=True)
    assert info.value.hint
    # an account made before the rule can still be looked up (and so log in)
    assert normalize_email(mixed).address == mixed


@pytest.mark.parametrize("local", [
    "alice", "caf\u00e9", "cafe\u0301", "\u0456\u0432\u0430\u043d", "\u03b8\u03c3\u03b5\u03c1",
    "\u7528\u6237", "\u65e5\u672c\u3072\u3089\u30ab\u30bf", "abc\u65e5\u672c",
    "\ud55c\uad6d\uc5b4abc", "first.last+tag-2024", "\U0001f600",
])
def test_one_script_or_a_usual_mix_is_fine(local: str) -> None:
    check_single_script(local)
    normalize_email(f"{local}@example.com", new=True)


def test_scripts_of_ignores_digits_punctuation_and_marks() -> None:
    assert scripts_of("a1.b+c-d_e\u0301") == {"LATIN"}
    assert scripts_of("12345") == set()
