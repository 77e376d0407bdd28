"""``feed/requests.py``: the frames the subscription state machine sends, and its pacing."""

from __future__ import annotations

import orjson
import pytest

from krakenstream.feed.requests import MAX_PACING, SLOW_PACING, Pacing, Request


def frame(r: Request) -> object:
    return orjson.loads(r.text())


def test_request_frames_in_krakens_shapes() -> None:
    assert frame(Request(1, "subscribe", "book", ("BTC/USD", "ETH/USD"), 25)) == {
        "method": "subscribe", "req_id": 1,
        "params": {"channel": "book", "symbol": ["BTC/USD", "ETH/USD"], "depth": 25,
                   "snapshot": True}}
    # an unsubscribe names the depth too, and asks for no snapshot
    assert frame(Request(2, "unsubscribe", "book", ("BTC/USD",), 25)) == {
        "method": "unsubscribe", "req_id": 2,
        "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 25}}
    assert frame(Request(3, "subscribe", "instrument")) == {
        "method": "subscribe", "req_id": 3, "params": {"channel": "instrument"}}
    assert frame(Request(4, "ping")) == {"method": "ping", "req_id": 4}


def test_pacing_holds_requests_apart_by_the_setting() -> None:
    p = Pacing(0.05)
    assert p.ready(0.0)
    p.sent(10.0)
    assert not p.ready(10.04) and p.ready(10.05)
    assert Pacing(-1.0).setting == 0.0  # a negative setting is no pacing


def test_complaints_double_the_interval_within_bounds_and_calm_eases_it_back() -> None:
    p = Pacing(0.05)
    p.sent(0.0)
    p.slow_down(1.0)
    assert (p.interval, p.complaints) == (SLOW_PACING, 1)  # at least the slow pacing
    assert not p.ready(1.0 + SLOW_PACING - 0.01) and p.ready(1.0 + SLOW_PACING)
    for _ in range(10):
        p.slow_down(2.0)
    assert p.interval == MAX_PACING and p.complaints == 11  # never more than the cap
    assert p.next_at == 2.0 + MAX_PACING
    eased = []
    while p.interval > p.setting:
        p.ease()
        eased.append(p.interval)
    assert eased == sorted(eased, reverse=True) and eased[-1] == 0.05  # back to the setting
    assert len(eased) > 10  # a step at a time, not at once
    p.ease()
    assert p.interval == 0.05


@pytest.mark.parametrize("setting", [0.0, 0.05, 2.0])
def test_slowing_down_never_brings_the_next_request_forward(setting: float) -> None:
    p = Pacing(setting)
    p.next_at = 100.0  # a request already held back far
    p.slow_down(1.0)
    assert p.next_at == 100.0
