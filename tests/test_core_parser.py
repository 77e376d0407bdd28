"""The decoder: every frame kind becomes its typed event; garbage becomes a BadFrame with a
reason, and nothing raises, whatever the input (fuzzed)."""

from __future__ import annotations

import json
from decimal import Decimal

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from krakenstream.core import events as ev
from krakenstream.core.parser import Decoder, decode
from krakenstream.core.session import BookSession


def test_status() -> None:
    e = decode('{"channel":"status","type":"update","data":[{"api_version":"v2",'
               '"connection_id":13834774380200032777,"system":"online","version":"2.0.0"}]}')
    assert e == ev.Status("online", "v2", 13834774380200032777, "2.0.0")


def test_heartbeat() -> None:
    assert isinstance(decode(b'{"channel":"heartbeat"}'), ev.Heartbeat)


def test_instrument_learns_precisions() -> None:
    d = Decoder()
    e = d.decode('{"channel":"instrument","type":"snapshot","data":{"assets":[],"pairs":[{'
                 '"symbol":"BTC/USD","price_precision":1,"qty_precision":8,'
                 '"price_increment":0.1,"qty_increment":1e-08,"status":"online"}]}}')
    assert isinstance(e, ev.Instrument)
    assert e.pairs[0].qty_increment == Decimal("1e-08")
    assert d.precisions["BTC/USD"] == ev.Precision(1, 8)


def test_subscribe_ack_and_error() -> None:
    ok = decode('{"method":"subscribe","req_id":1,"result":{"channel":"book","depth":10,'
                '"snapshot":true,"symbol":"ETH/USD"},"success":true,"time_in":"x","time_out":"y"}')
    assert ok == ev.SubscriptionAck("subscribe", 1, True, "book", "ETH/USD", 10, None)
    err = decode('{"method":"subscribe","req_id":2,"success":false,'
                 '"error":"Currency pair not supported XBT/EUR","symbol":"XBT/EUR"}')
    assert isinstance(err, ev.SubscriptionAck)
    assert (err.success, err.symbol, err.error) == (
        False, "XBT/EUR", "Currency pair not supported XBT/EUR")
    # an error answer that leaves its method out is still an answer, matched by req_id
    rate = decode('{"error":"Exceeded msg rate","req_id":3,"success":false}')
    assert rate == ev.SubscriptionAck("", 3, False, None, None, None, "Exceeded msg rate")


def test_pong_trade_ticker() -> None:
    assert decode('{"method":"pong","req_id":101,"time_in":"a","time_out":"b"}') == ev.Pong(101)
    t = decode('{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell",'
               '"price":0.5117,"qty":40.0,"ord_type":"market","trade_id":4665906,'
               '"timestamp":"2023-09-25T07:49:37.708706Z"}]}')
    assert isinstance(t, ev.Trade) and t.data[0].price == Decimal("0.5117")
    k = decode('{"channel":"ticker","type":"snapshot","data":[{"symbol":"ALGO/USD","bid":0.10025,'
               '"bid_qty":740.0,"ask":0.10035,"ask_qty":740.0,"last":0.10035,'
               '"volume":997038.98383185,"vwap":0.10148,"low":0.09979,"high":0.10285,'
               '"change":-0.00017,"change_pct":-0.17}]}')
    assert isinstance(k, ev.Ticker) and k.data[0].change_pct == Decimal("-0.17")


def test_book_levels_scaled_exactly() -> None:
    d = Decoder({"X/Y": ev.Precision(9, 2)})
    e = d.decode('{"channel":"book","type":"update","data":[{"symbol":"X/Y","bids":[{"price":'
                 '1.2345e-05,"qty":123456789012.5}],"asks":[],"checksum":7}]}')
    assert isinstance(e, ev.BookMessage)
    assert e.data[0].bids == [(12345, 12345678901250)]


def test_book_value_off_precision_is_a_bad_frame() -> None:
    d = Decoder({"X/Y": ev.Precision(1, 8)})
    e = d.decode('{"channel":"book","type":"update","data":[{"symbol":"X/Y","bids":[{"price":'
                 '1.25,"qty":1}],"asks":[],"checksum":7}]}')
    assert isinstance(e, ev.BadFrame)
    assert "more decimals than the price precision 1" in e.reason


@pytest.mark.parametrize(("text", "reason"), [
    ("", "not JSON"),
    ("{", "not JSON"),
    ("[1,2]", "not a JSON object"),
    ('{"foo":1}', "neither channel nor method"),
    ('{"channel":"nope"}', "unknown channel"),
    ('{"method":"nope"}', "unknown method"),
    ('{"channel":"book","type":"x","data":[]}', "not snapshot or update"),
    ('{"channel":"book","type":"update","data":[]}', "no data"),
    ('{"channel":"book","type":"update","data":[{"symbol":"A/B","checksum":-1}]}', "checksum"),
    ('{"channel":"book","type":"update","data":[{"symbol":"A/B","checksum":1,"bids":[1]}]}',
     "price and qty"),
    ('{"channel":"book","type":"update","data":[{"symbol":"A/B","checksum":1,'
     '"bids":[{"price":"1","qty":1}]}]}', "not a number"),
    ('{"channel":"book","type":"update","data":[{"symbol":"A/B","checksum":1,'
     '"bids":[{"price":-1,"qty":1}]}]}', "bad price"),
    ('{"channel":"status","data":[]}', "no data"),
    ('{"channel":"instrument","data":[]}', "not an object"),
    ('{"method":"subscribe","req_id":1}', "success"),
])
def test_malformed_frames_give_a_reason(text: str, reason: str) -> None:
    e = decode(text)
    assert isinstance(e, ev.BadFrame)
    assert reason in e.reason


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(
        ["channel", "type", "data", "symbol", "bids", "asks", "price", "qty", "checksum",
         "method", "success", "result", "pairs", "price_precision", "qty_precision", "req_id",
         "timestamp", "system", "depth", "error"]) | st.text(max_size=5), children, max_size=6),
    max_leaves=30,
)
BOOKISH = st.fixed_dictionaries({
    "channel": st.sampled_from(["book", "instrument", "status", "heartbeat", "trade", "ticker"]),
    "type": st.sampled_from(["snapshot", "update", "x"]),
    "data": JSON,
})


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200), JSON.map(json.dumps),
                 BOOKISH.map(json.dumps)))
@pytest.mark.slow
def test_decoder_and_session_never_raise(text: str | bytes) -> None:
    assert decode(text) is not None
    session = BookSession()
    session.receive('{"channel":"instrument","type":"snapshot","data":{"pairs":[{"symbol":"A/B",'
                    '"price_precision":2,"qty_precision":4}]}}')
    session.receive(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({"price": JSON, "qty": JSON}), max_size=5),
       st.sampled_from(["snapshot", "update"]))
# a float whose scaled value overflows to infinity (round() raised OverflowError)
@example([{"price": 1.797693134862316e306, "qty": None}], "snapshot")
@example([{"price": 1.0, "qty": 1.797693134862316e306}], "update")
@pytest.mark.slow
def test_book_frames_with_garbage_levels_never_raise(levels: list, kind: str) -> None:  # type: ignore[type-arg]
    session = BookSession()
    session.receive(orjson.dumps({"channel": "instrument", "type": "snapshot", "data": {
        "pairs": [{"symbol": "A/B", "price_precision": 2, "qty_precision": 4}]}}))
    frame = {"channel": "book", "type": kind, "data": [
        {"symbol": "A/B", "bids": levels, "asks": [], "checksum": 0}]}
    session.receive(json.dumps(frame))
