"""The client's boundary without a daemon: HTTP answers and transport failures become our
errors, stream messages become events, URLs are built right."""

from __future__ import annotations

import asyncio

import pytest

from conftest import free_port
from krakenstream.client import (
    KmsClient,
    SnapshotEvent,
    StatusEvent,
    error_from_response,
    parse_stream_message,
    quote_pair,
)
from krakenstream.errors import (
    AuthError,
    BackendUnavailable,
    Conflict,
    InputError,
    KmsError,
    NotFound,
    Throttled,
)


def body(message: str, code: str, hint: str | None = None) -> bytes:
    import orjson

    obj = {"error": message, "code": code}
    if hint:
        obj["hint"] = hint
    return orjson.dumps(obj)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, AuthError), (404, NotFound), (409, Conflict), (422, InputError), (413, InputError),
     (503, BackendUnavailable)],
)
def test_status_maps_to_error_with_the_gateways_message(status: int, cls: type) -> None:
    err = error_from_response(status, {}, body("the sentence", "x"), "GET /x")
    assert type(err) is cls
    assert str(err) == "the sentence"


def test_401_hints_kms_login() -> None:
    err = error_from_response(401, {}, body("token expired", "unauthorized"), "GET /x")
    assert err.hint == "kms login"
    err = error_from_response(401, {}, body("bad", "unauthorized", "log in again"), "GET /x")
    assert err.hint == "log in again"  # the gateway's own hint wins


def test_429_carries_retry_after() -> None:
    err = error_from_response(429, {"retry-after": "42"}, body("too many", "throttled"), "x")
    assert isinstance(err, Throttled) and err.retry_after == 42
    assert "42" in (err.hint or "")
    err = error_from_response(429, {}, b"", "x")
    assert isinstance(err, Throttled) and err.retry_after == 1


def test_odd_bodies() -> None:
    err = error_from_response(422, {}, b'{"detail": [{"msg": "field required"}]}', "x")
    assert str(err) == "field required"
    err = error_from_response(404, {}, b"plain text", "GET /nope")
    assert str(err) == "plain text"
    err = error_from_response(404, {}, b"", "GET /nope")
    assert "GET /nope" in str(err)
    err = error_from_response(500, {}, body("boom", "internal"), "GET /x")
    assert type(err) is KmsError and "boom" in str(err) and "500" in str(err)
    err = error_from_response(418, {}, b"{}", "GET /x")
    assert type(err) is KmsError and "418" in str(err)


def test_parse_stream_message() -> None:
    assert parse_stream_message("ETH/USD", b'{"type":"snapshot","data":{"pair":"ETH/USD",'
                                           b'"seq":3}}') == SnapshotEvent(
        "ETH/USD", {"pair": "ETH/USD", "seq": 3})
    assert parse_stream_message(
        "ETH/USD", '{"type":"status","pair":"ETH/USD","state":"stale","reason":"quiet"}'
    ) == StatusEvent("ETH/USD", "stale", "quiet")
    assert parse_stream_message("ETH/USD", '{"type":"status","state":"live"}') == StatusEvent(
        "ETH/USD", "live", None)
    for junk in ("not json", "[1]", '{"type":"hello"}', '{"type":"snapshot","data":3}'):
        assert parse_stream_message("ETH/USD", junk) is None


def test_urls() -> None:
    assert quote_pair("ETH/USD") == "ETH%2FUSD"
    with KmsClient("http://127.0.0.1:3000/") as c:
        assert c.base_url == "http://127.0.0.1:3000"
        assert c.stream_url("ETH/USD") == "ws://127.0.0.1:3000/api/stream/ETH%2FUSD"
    with KmsClient("https://kms.example:8443") as c:
        assert c.stream_url("BTC/EUR") == "wss://kms.example:8443/api/stream/BTC%2FEUR"
    for bad in ("127.0.0.1:3000", "ftp://x", "http://"):
        with pytest.raises(InputError):
            KmsClient(bad)


def test_refused_names_the_url_and_hints_daemon_start() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with KmsClient(url, timeout=2) as c:
        for call in (c.health, c.pairs, lambda: c.latest("ETH/USD"),
                     lambda: list(c.history("ETH/USD")),
                     lambda: list(c.history_raw("ETH/USD", format="csv"))):
            with pytest.raises(BackendUnavailable) as info:
                call()
            assert str(info.value) == f"cannot reach the daemon at {url}"
            assert info.value.hint == "kms daemon start"


def test_hint_for_a_remote_daemon() -> None:
    with KmsClient("http://127.0.0.1:1") as local, KmsClient("http://kms.example:3000") as far:
        assert local.start_hint == "kms daemon start"
        assert "KMS_SERVER" in far.start_hint


async def test_stream_refused_at_first_raises() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with KmsClient(url, "t", timeout=2) as c:
        with pytest.raises(BackendUnavailable) as info:
            async with asyncio.timeout(5):
                async for _ in c.stream(["ETH/USD", "BTC/USD"]):
                    pass
        assert str(info.value) == f"cannot reach the daemon at {url}"
        assert info.value.hint == "kms daemon start"
