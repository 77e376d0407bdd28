"""The one redaction rule for URLs with passwords (redact.py)."""

from __future__ import annotations

from krakenstream.redact import redact_url


def test_redact_url_hides_passwords_even_in_bad_urls() -> None:
    assert redact_url("mysql://kms:s3cret@db:3306/k") == "mysql://kms:***@db:3306/k"
    assert redact_url("mysql://kms:s3cret@db:notaport/k") == "mysql://kms:***@db:notaport/k"
    assert "s3cret" not in redact_url("redis://:s3cret@h/0")
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
