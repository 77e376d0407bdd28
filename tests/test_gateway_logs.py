"""Tokens kept out of uvicorn's log lines (gateway/logs.py): in a query, in a header."""

from __future__ import annotations

import logging

import pytest

from krakenstream.daemon.gateway.logs import RedactTokens


@pytest.mark.parametrize("query", ["token=SECRET", "TOKEN=SECRET", "a=1&token=SECRET&b=2",
                                   "%74oken=SECRET", "to%6Ben=SECRET", "tok%65n=SECRET&x=1"])
def test_a_token_in_a_logged_query_is_redacted_however_spelled(query: str) -> None:
    # Starlette decodes the name before looking up "token", so every spelling authenticates
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1,
                               '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5000", f"/api/stream/ETH-USD?{query}"), None)
    assert RedactTokens().filter(record)
    text = record.getMessage()
    assert "SECRET" not in text and "=***" in text and "/api/stream/ETH-USD?" in text


@pytest.mark.parametrize("line", [
    "< authorization: Bearer aaa.bbb.ccc",
    "< Sec-WebSocket-Protocol: kms.bearer, aaa.bbb.ccc",
    "> sec-websocket-protocol:kms.bearer,aaa.bbb.ccc",
])
def test_a_token_in_a_logged_header_is_redacted(line: str) -> None:
    record = logging.LogRecord("uvicorn.error", logging.DEBUG, __file__, 1, "%s", (line,), None)
    assert RedactTokens().filter(record)
    assert "aaa.bbb.ccc" not in record.getMessage()
    assert record.getMessage().endswith(" ***")
