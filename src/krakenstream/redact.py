"""What a log line or an error message may show of a secret-bearing value: nothing secret.

Backend URLs carry passwords (``mysql://kms:pw@db/k``, ``redis://:pw@h/0``); the backends,
the client and the daemon all name URLs in their messages, so they share this one rule.
"""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(r"(//[^:/@]*):[^@/]*@")


def redact_url(url: str) -> str:
    """A backend URL without its password (``redis://u:***@h:6379/0``), fit for a log line
    or an error message; works on malformed URLs too."""
    return _URL_PASSWORD.sub(r"\1:***@", url)
