"""The client's boundary without a daemon: HTTP answers and transport failures become our
errors, stream messages become events, URLs are built right."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cli_support import PASSWORD, LiveDaemon, make_snapshots, prefill
from conftest import free_port
from krakenstream.client import (
    Connected,
    KmsClient,
    Reconnecting,
    SnapshotEvent,
    StatusEvent,
    check_base_url,
    error_from_response,
    parse_stream_message,
    quote_pair,
)
from krakenstream.core.snapshot import CSV_COLUMNS, Snapshot
from krakenstream.core.wide import wide_columns
from krakenstream.errors import (
    AuthError,
    BackendUnavailable,
    Conflict,
    Forbidden,
    InputError,
    KmsError,
    NotFound,
    Throttled,
)
from krakenstream.wire import HINTS


def body(message: str, code: str, hint: str | None = None) -> bytes:
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
    # the code's default hint (written for the HTTP API) yields to the exception's own
    err = error_from_response(401, {}, body("bad", "unauthorized", HINTS["unauthorized"]),
                              "GET /x")
    assert err.hint == "kms login"
    err = error_from_response(409, {}, body("taken", "conflict", HINTS["conflict"]), "GET /x")
    assert err.hint is None


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


@pytest.mark.parametrize("path, answer, call", [
    ("/api/users/login", b"[]", lambda c: c.login("a@example.com", "pw")),
    ("/api/users/login", b'{"token": 5}', lambda c: c.login("a@example.com", "pw")),
    ("/api/analysis/history/ETH%2FUSD", b'{"seq": 1}\n{"seq": 2, "tru',
     lambda c: list(c.history("ETH/USD"))),
    ("/api/analysis/history/ETH%2FUSD", b"[1]\n", lambda c: list(c.history("ETH/USD"))),
])
def test_a_malformed_answer_is_one_error_naming_the_daemon(path: str, answer: bytes,
                                                           call: Any) -> None:
    # no daemon of ours answers like this; a foreign server at --server might
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.raw_path.split(b"?")[0] == path.encode()
        return httpx.Response(200, content=answer)

    with KmsClient("http://127.0.0.1:1", "t", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(KmsError, match="http://127.0.0.1:1"):
            call(c)


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


@pytest.mark.parametrize("bad", ["http://[::1", "http://127.0.0.1:99999", "http://h:port",
                                 "http://user:s3cret@127.0.0.1:3000"])
def test_malformed_urls_are_input_errors_that_never_echo_a_password(bad: str) -> None:
    with pytest.raises(InputError) as info:
        check_base_url(bad)
    assert "s3cret" not in str(info.value) and info.value.hint


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


@pytest.mark.slow
def test_a_daemon_that_does_not_answer_in_time_is_busy_not_down() -> None:
    # a socket that listens but never answers: the connection is taken, the answer never comes
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(8)
        url = f"http://127.0.0.1:{busy.getsockname()[1]}"
        with KmsClient(url, timeout=0.3) as c, pytest.raises(BackendUnavailable) as info:
            c.health()
    assert str(info.value) == f"the daemon at {url} did not answer within 0.3 s"
    assert info.value.hint is not None and "busy" in info.value.hint
    assert "kms daemon start" not in info.value.hint  # it runs: starting one is no help


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


# -- against a real daemon --------------------------------------------------------------------

HELD = "ADA/USD"  # untracked, with a full history written before the daemon starts
N_HELD = 10_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    home = tmp_path_factory.mktemp("client-daemon")
    prefill(home, make_snapshots(HELD, N_HELD, start_ms=1_764_000_000_000))
    daemon = LiveDaemon(home)
    try:
        daemon.start()
        daemon.login("client@example.com")  # the first account: the admin (it tracks pairs)
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def token(live: LiveDaemon) -> str:
    return live.login("client@example.com")


def test_users(live: LiveDaemon) -> None:
    with KmsClient(live.url) as c:
        user = c.register("Dora@Example.com", PASSWORD)
        assert user["email"].lower() == "dora@example.com" and "id" in user
        with pytest.raises(Conflict):
            c.register("dora@example.com", PASSWORD)
        with pytest.raises(InputError):
            c.register("dora2@example.com", "x")
        with pytest.raises(AuthError) as info:
            c.login("dora@example.com", "not the password")
        assert info.value.hint == "kms login"
        with pytest.raises(AuthError):
            c.me()  # no token yet
        answer = c.login("dora@example.com", PASSWORD)
        assert answer["token_type"] == "bearer" and answer["expires_at"].endswith("Z")
        assert c.token == answer["token"]
        assert c.me()["email"].lower() == "dora@example.com"


def test_reads(live: LiveDaemon, token: str) -> None:
    live.wait_snapshots("ETH/USD", token)
    with KmsClient(live.url, token) as c:
        health = c.health()
        assert health["status"] in ("ok", "degraded") and "gateway" in health["roles"]
        pairs = {p["pair"]: p for p in c.pairs()}
        assert {"ETH/USD", "BTC/USD"} <= set(pairs)
        latest = Snapshot.from_dict(c.latest("ETH/USD"))
        assert latest.pair == "ETH/USD"
        assert Snapshot.from_dict(c.latest("eth-usd")).pair == "ETH/USD"
        book = c.orderbook("ETH/USD", depth=3)
        assert book["pair"] == "ETH/USD" and len(book["bids"]) == 3 and len(book["asks"]) == 3
        assert book["source"] in ("live", "snapshot")
        with pytest.raises(NotFound) as info:
            c.latest("DOGE/XYZ")
        assert "DOGE/XYZ" in str(info.value)
        with pytest.raises(InputError):
            c.latest("NOSLASH")


def test_history_is_streamed(live: LiveDaemon, token: str) -> None:
    import tracemalloc

    with KmsClient(live.url, token) as c:
        tracemalloc.start()
        try:
            seqs = [s["seq"] for s in c.history(HELD, order="asc")]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert seqs == list(range(1, N_HELD + 1))
        # 10,000 decoded snapshots would take several MB; one chunk at a time stays small
        assert peak < 2_000_000, peak
        body = b"".join(c.history_raw(HELD, format="csv", limit=10, layout="levels"))
        rows = body.decode().splitlines()
        assert rows[0].split(",") == CSV_COLUMNS and len(rows) == 11
        body = b"".join(c.history_raw(HELD, format="csv", limit=10, depth=2))
        rows = body.decode().splitlines()
        assert rows[0].split(",") == wide_columns(2) and len(rows) == 11
        body = b"".join(c.history_raw(HELD, format="parquet", limit=10))
        assert body[:4] == body[-4:] == b"PAR1"
        doc = orjson.loads(b"".join(c.history_raw(HELD, format="json", limit=2)))
        assert [s["seq"] for s in doc["snapshots"]] == [N_HELD, N_HELD - 1]
        with pytest.raises(InputError):
            list(c.history(HELD, since="not a time"))
        with pytest.raises(NotFound):
            list(c.history("DOGE/XYZ"))


def test_track_untrack(live: LiveDaemon, token: str) -> None:
    with KmsClient(live.url, token) as c:
        assert c.track("LTC/USD")["pair"] == "LTC/USD"
        with pytest.raises(Conflict):
            c.track("LTC/USD")
        assert "LTC/USD" in {p["pair"] for p in c.pairs()}
        assert c.untrack("ltc-usd")["state"] == "untracked"
        with pytest.raises(NotFound):
            c.untrack("LTC/USD")
        with pytest.raises(InputError):
            c.track("not a pair")


async def test_stream_two_pairs(live: LiveDaemon, token: str) -> None:
    seen: dict[str, list[int]] = {"ETH/USD": [], "BTC/USD": []}
    connected: set[str] = set()
    with KmsClient(live.url, token) as c:
        async with asyncio.timeout(10):
            async for event in c.stream(["ETH/USD", "btc-usd"]):
                if isinstance(event, Connected):
                    connected.add(event.pair)
                elif isinstance(event, SnapshotEvent):
                    seen[event.pair].append(event.data["seq"])
                if all(len(v) >= 2 for v in seen.values()):
                    break
    assert connected == {"ETH/USD", "btc-usd"}
    for seqs in seen.values():
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_stream_refusals(live: LiveDaemon, token: str) -> None:
    with KmsClient(live.url, "forged") as c, pytest.raises(AuthError) as info:
        async with asyncio.timeout(10):
            async for _ in c.stream(["ETH/USD"]):
                pass
    assert info.value.hint == "kms login"
    with KmsClient(live.url, token) as c, pytest.raises(InputError):
        async with asyncio.timeout(10):
            async for _ in c.stream(["NOSLASH"]):
                pass


@pytest.mark.slow
async def test_stream_survives_a_daemon_restart(tmp_path: Path) -> None:
    live = LiveDaemon(tmp_path / "home", pairs=("ETH/USD",))
    await asyncio.to_thread(live.start)
    try:
        token = await asyncio.to_thread(live.login, "restart@example.com")
        events: list[object] = []
        with KmsClient(live.url, token) as c:
            async with asyncio.timeout(40):
                stream = c.stream(["ETH/USD"], backoff_max=0.5)
                async for event in stream:
                    events.append(event)
                    kinds = [type(e).__name__ for e in events]
                    if isinstance(event, SnapshotEvent) and "Reconnecting" not in kinds:
                        await asyncio.to_thread(live.stop_daemon)
                    elif isinstance(event, Reconnecting) and kinds.count("Reconnecting") == 2:
                        await asyncio.to_thread(live.start_daemon)
                    elif isinstance(event, SnapshotEvent):
                        break
                await stream.aclose()
    finally:
        await asyncio.to_thread(live.stop)
    kinds = [type(e).__name__ for e in events]
    first_gap = kinds.index("Reconnecting")
    assert kinds[:first_gap].count("SnapshotEvent") >= 1
    assert kinds.count("Connected") == 2
    assert kinds[-1] == "SnapshotEvent" and kinds.index("Connected", first_gap) < len(kinds) - 1
    gaps = [e for e in events if isinstance(e, Reconnecting)]
    assert [g.attempt for g in gaps] == list(range(1, len(gaps) + 1))
    assert all(0 <= g.delay <= 0.5 for g in gaps)


def test_accounts_roles_and_logout(live: LiveDaemon, token: str) -> None:
    with KmsClient(live.url, token) as admin:
        assert admin.me()["role"] == "admin"
        added = admin.add_user("acct-reader@example.com", PASSWORD)
        assert added["role"] == "reader" and added["disabled"] is False
        assert "acct-reader@example.com" in {u["email"] for u in admin.users()}
        assert admin.change_user(added["id"], "promote")["role"] == "admin"
        assert admin.change_user(added["id"], "demote")["role"] == "reader"
        with KmsClient(live.url) as reader:
            reader.login("acct-reader@example.com", PASSWORD)
            with pytest.raises(Forbidden, match="needs an admin account") as info:
                reader.track("XRP/USD")
            assert info.value.hint and "kms user promote" in info.value.hint
            with pytest.raises(Forbidden):
                reader.users()
            assert reader.logout() == {"revoked": True}
            with pytest.raises(AuthError, match="revoked"):
                reader.me()
        assert admin.change_user(added["id"], "disable")["disabled"] is True
        with KmsClient(live.url) as reader, pytest.raises(Forbidden, match="disabled"):
            reader.login("acct-reader@example.com", PASSWORD)
        assert admin.change_user(added["id"], "enable")["disabled"] is False
        assert admin.delete_user(added["id"]) == {"id": added["id"], "deleted": True}
        with pytest.raises(NotFound):
            admin.delete_user(added["id"])
