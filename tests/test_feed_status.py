"""``feed/status.py``: the states and counters the feed client hands out, as the health
output and the gateway read them (every field in ``to_dict``, nothing else)."""

from __future__ import annotations

import dataclasses

import orjson

from krakenstream.feed.status import ConnectionStatus, FeedEvent, PairState, PairStatus


def test_every_field_is_in_the_dict_under_its_own_name() -> None:
    values = [PairStatus("BTC/USD"), ConnectionStatus("ws://127.0.0.1:1/v2"),
              FeedEvent("BTC/USD", PairState.CONNECTING, PairState.LIVE, "snapshot", 1.5)]
    for value in values:
        d = value.to_dict()
        assert list(d) == [f.name for f in dataclasses.fields(value)], type(value)
        for f in dataclasses.fields(value):
            raw = getattr(value, f.name)
            assert d[f.name] == (raw.value if isinstance(raw, PairState) else raw)


def test_dicts_are_plain_json_with_states_as_their_words() -> None:
    st = PairStatus("ETH/USD", state=PairState.ERROR, error="Currency pair not supported")
    ev = FeedEvent("ETH/USD", PairState.LIVE, PairState.RESYNCING, "checksum mismatch", 2.0)
    conn = ConnectionStatus("ws://x/v2", connection_id=2**64 - 1)  # Kraken's ids exceed int64
    assert orjson.loads(orjson.dumps(st.to_dict()))["state"] == "error"
    assert orjson.loads(orjson.dumps(ev.to_dict())) == {
        "pair": "ETH/USD", "old": "live", "new": "resyncing", "reason": "checksum mismatch",
        "time": 2.0}
    assert conn.to_dict()["connection_id"] == 2**64 - 1
    assert [s.value for s in PairState] == ["connecting", "live", "resyncing", "stale", "error"]
