"""Tokens in log lines: uvicorn logs a WebSocket's path with its query string, where a token
may travel (``?token=``); :class:`RedactTokens` rewrites it before any handler sees the record.
The gateway's own request line never holds a query string (see :mod:`.middleware`).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)
#: a header that carries a token (the WebSocket subprotocol ``kms.bearer, <token>`` too), as
#: uvicorn's WebSocket layer logs request headers at DEBUG: ``< authorization: Bearer ...``
_SECRET_HEADER = re.compile(r"\b(authorization|sec-websocket-protocol)(\s*:)[^\r\n]*",
                            re.IGNORECASE)
#: one ``name=value`` of a query string, as uvicorn logs it (still percent-encoded)
_QUERY_PAIR = re.compile(r"([?&])([^=&\s\"'#]+)=([^&\s\"'#]*)")


def _redact_query_token(match: re.Match[str]) -> str:
    if unquote_plus(match.group(2)).lower() != "token":
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}=***"


class RedactTokens(logging.Filter):
    """uvicorn logs a WebSocket's path with its query string, where a token may travel:
    rewrite ``token=...`` to ``token=***`` before any handler sees the record; and at DEBUG
    it logs request headers: the values of ``Authorization`` and ``Sec-WebSocket-Protocol``
    (where a browser offers its token) become ``***``. The name is
    matched once percent-decoded too, because Starlette decodes it before looking for
    ``token``: ``?%74oken=...`` authenticates just the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot format is not ours to fix
            return True
        redacted = text
        if "=" in redacted:
            redacted = _QUERY_PAIR.sub(_redact_query_token, _TOKEN_IN_TEXT.sub(r"\1***", redacted))
        if ":" in redacted:
            redacted = _SECRET_HEADER.sub(r"\1\2 ***", redacted)
        if redacted != text:
            record.msg = redacted
            record.args = None
        return True


def redact_uvicorn_logs() -> None:
    """Install :class:`RedactTokens` on uvicorn's loggers (once)."""
    for name in ("uvicorn.error", "uvicorn.access", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
