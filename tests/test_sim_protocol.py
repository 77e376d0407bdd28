"""The simulator's protocol decisions, without a socket: requests in, replies and orders out."""

from __future__ import annotations

from typing import Any

import orjson

from krakenstream.sim.protocol import (
    Catalog,
    CloseBook,
    Fault,
    OpenBook,
    Pause,
    Reply,
    SendInstrument,
    Session,
    ShowBook,
    instrument_frame,
    status_frame,
)

CLOCK = "2026-01-01T00:00:00.000000Z"


def session(fixed: dict[str, int] | None = None) -> Session:
    return Session(Catalog({"ETH/USD", "BTC/USD"}, fixed), clock=lambda: CLOCK)


def send(s: Session, method: Any, params: Any = None, req_id: Any = 1) -> list[Any]:
    body: dict[str, Any] = {"method": method, "req_id": req_id}
    if params is not None:
        body["params"] = params
    return s.receive(orjson.dumps(body))


def frame(action: Any) -> dict[str, Any]:
    assert isinstance(action, Reply)
    out: dict[str, Any] = orjson.loads(action.frame)
    return out


def test_ping_gets_a_stamped_pong() -> None:
    (reply,) = send(session(), "ping", req_id=7)
    assert frame(reply) == {"method": "pong", "req_id": 7, "time_in": CLOCK, "time_out": CLOCK}
    assert not reply.error


def test_malformed_and_unknown_requests_are_errors() -> None:
    s = session()
    for raw in (b"{not json", b"[1, 2]"):
        (reply,) = s.receive(raw)
        assert reply.error and frame(reply)["error"] == "Malformed request"
        assert "method" not in frame(reply) and "req_id" not in frame(reply)
    (reply,) = send(s, "frobnicate", req_id=3)
    assert frame(reply)["error"] == "Unsupported method frobnicate"
    assert frame(reply)["method"] == "frobnicate" and frame(reply)["req_id"] == 3
    (reply,) = send(s, 5)
    assert "method" not in frame(reply)
    (reply,) = send(s, "subscribe", params=[1])
    assert frame(reply)["error"] == "Params field must be an object"


def test_book_subscribe_acks_each_symbol_then_opens_it() -> None:
    s = session()
    actions = send(s, "subscribe", {"channel": "book", "symbol": ["ETH/USD", "BTC/USD"],
                                    "depth": 25, "snapshot": False})
    assert [type(a) for a in actions] == [Reply, OpenBook, Reply, OpenBook]
    assert frame(actions[0])["result"] == {"channel": "book", "depth": 25, "snapshot": False,
                                           "symbol": "ETH/USD"}
    assert actions[1] == OpenBook("ETH/USD", 25, False)
    assert s.depths == {"ETH/USD": 25, "BTC/USD": 25} and s.subscribed


def test_book_errors_are_kraken_s() -> None:
    s = session()

    def error(params: dict[str, Any]) -> dict[str, Any]:
        (reply,) = send(s, params.pop("method", "subscribe"), {"channel": "book", **params})
        assert reply.error
        return frame(reply)

    assert error({"symbol": "ETH/USD"})["error"] == "Symbol field must be an array"
    err = error({"symbol": ["XBT/EUR"]})
    assert (err["error"], err["symbol"]) == ("Currency pair not supported XBT/EUR", "XBT/EUR")
    assert error({"symbol": ["ETH/USD"], "depth": 15})["error"] == (
        "Subscription depth not supported")
    assert error({"symbol": ["ETH/USD"], "depth": "10"})["error"] == (
        "Subscription depth not supported")
    # an unsubscribe of what is not subscribed: Kraken calls that error "subscribe"
    err = error({"method": "unsubscribe", "symbol": ["ETH/USD"], "depth": 10})
    assert (err["error"], err["method"]) == ("Subscription Not Found", "subscribe")
    send(s, "subscribe", {"channel": "book", "symbol": ["ETH/USD"], "depth": 10})
    assert error({"symbol": ["ETH/USD"]})["error"] == "Already subscribed"
    # the unsubscribe must name the subscribed depth
    err = error({"method": "unsubscribe", "symbol": ["ETH/USD"], "depth": 25})
    assert err["error"] == "Subscription Not Found"
    assert s.depths == {"ETH/USD": 10}


def test_the_same_symbol_twice_in_one_request() -> None:
    s = session()
    actions = send(s, "subscribe", {"channel": "book", "symbol": ["ETH/USD", "ETH/USD"]})
    assert [type(a) for a in actions] == [Reply, OpenBook, Reply]
    assert frame(actions[2])["error"] == "Already subscribed"


def test_unsubscribe_closes_then_acks() -> None:
    s = session()
    send(s, "subscribe", {"channel": "book", "symbol": ["ETH/USD"]})
    close, ack = send(s, "unsubscribe", {"channel": "book", "symbol": ["ETH/USD"], "depth": 10})
    assert close == CloseBook("ETH/USD")
    assert frame(ack)["result"] == {"channel": "book", "depth": 10, "symbol": "ETH/USD"}
    assert frame(ack)["method"] == "unsubscribe"
    assert s.depths == {} and not s.subscribed


def test_a_replay_serves_each_symbol_at_its_recorded_depth_only() -> None:
    s = session({"ETH/USD": 10, "BTC/USD": 25})
    (err,) = send(s, "subscribe", {"channel": "book", "symbol": ["BTC/USD"], "depth": 10})
    assert frame(err)["error"] == "Subscription depth not supported"
    ack, opened = send(s, "subscribe", {"channel": "book", "symbol": ["BTC/USD"], "depth": 25})
    assert opened == OpenBook("BTC/USD", 25, True)


def test_instrument_and_other_channels() -> None:
    s = session()
    ack, snap = send(s, "subscribe", {"channel": "instrument"})
    assert frame(ack)["result"] == {"channel": "instrument", "snapshot": True}
    assert snap == SendInstrument() and s.subscribed
    (ack,) = send(s, "subscribe", {"channel": "instrument", "snapshot": False})
    assert frame(ack)["result"] == {"channel": "instrument", "snapshot": False}
    (ack,) = send(s, "unsubscribe", {"channel": "instrument"})
    assert frame(ack)["result"] == {"channel": "instrument"} and not s.subscribed
    (ack,) = send(s, "subscribe", {"channel": "heartbeat"})
    assert frame(ack)["success"] is True
    (err,) = send(s, "subscribe", {"channel": "ohlc"})
    assert err.error and frame(err)["error"] == "Channel ohlc not supported"


def test_controls() -> None:
    s = session()
    (fault,) = send(s, "x-sim-fault", {"kind": "drop"}, req_id=4)
    assert fault == Fault({"kind": "drop"}, 4, CLOCK)
    (show,) = send(s, "x-sim-book", {"symbol": "ETH/USD"}, req_id=5)
    assert show == ShowBook("ETH/USD", 10, 5, CLOCK)
    for bad in ({"symbol": 3}, {"symbol": "ETH/USD", "depth": 0}, None):
        (err,) = send(s, "x-sim-book", bad)
        assert frame(err)["error"] == "bad request: symbol and depth"
    pause, ack = send(s, "x-sim-pause", {"paused": False})
    assert pause == Pause(False) and frame(ack)["result"] == {"paused": False}
    (pause, ack) = send(s, "x-sim-pause")
    assert pause == Pause(True)
    (err,) = send(s, "x-sim-pause", {"paused": "yes"})
    assert err.error


def test_answer_and_error_keep_kraken_s_key_order() -> None:
    s = session()
    reply = s.error("subscribe", 9, "Already subscribed", CLOCK, symbol="ETH/USD")
    assert list(frame(reply)) == ["error", "success", "method", "symbol", "req_id", "time_in",
                                  "time_out"]
    assert list(frame(s.answer({"method": "pong"}, None, CLOCK))) == [
        "method", "time_in", "time_out"]


def test_status_and_instrument_frames() -> None:
    status = orjson.loads(status_frame(2**64 - 1, "maintenance"))
    assert status == {"channel": "status", "type": "update", "data": [{
        "api_version": "v2", "connection_id": 2**64 - 1, "system": "maintenance",
        "version": status["data"][0]["version"]}]}
    inst = orjson.loads(instrument_frame({"assets": [], "pairs": []}))
    assert inst == {"channel": "instrument", "type": "snapshot",
                    "data": {"assets": [], "pairs": []}}
