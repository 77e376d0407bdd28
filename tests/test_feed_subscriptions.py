"""The subscription state machine, alone: frames and answers in, requests and states out.

No socket, no event loop, no clock: every test drives :class:`Subscriptions` by hand with
the times it chooses, and reads what it would send.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from krakenstream.core.checksum import checksum
from krakenstream.errors import FeedError, InvalidPair
from krakenstream.feed.options import FeedOptions
from krakenstream.feed.requests import MAX_PACING, SLOW_PACING, Request, Sub
from krakenstream.feed.status import PairState
from krakenstream.feed.subscriptions import Subscriptions

WALL = 1_700_000_000.0
OPTIONS = FeedOptions(url="ws://127.0.0.1:1/v2", subscribe_batch=2, subscribe_pacing=0.1,
                      heartbeat_timeout=4.0, ack_timeout=5.0)


# -- frames -------------------------------------------------------------------------------


def instrument(*symbols: str, kind: str = "snapshot", pp: int = 1, qp: int = 8,
               status: str = "online") -> str:
    return orjson.dumps({"channel": "instrument", "type": kind, "data": {"assets": [], "pairs": [
        {"symbol": s, "price_precision": pp, "qty_precision": qp, "status": status}
        for s in symbols]}}).decode()


def book(symbol: str, bids: list[tuple[float, float]], asks: list[tuple[float, float]], *,
         kind: str = "snapshot", crc: int | None = None) -> str:
    """A book frame at precision 1/8; its checksum is right unless ``crc`` says otherwise."""
    def scaled(levels: list[tuple[float, float]]) -> list[tuple[int, int]]:
        return [(round(p * 10), round(q * 10**8)) for p, q in levels]

    if crc is None:
        crc = checksum(sorted(scaled(asks)), sorted(scaled(bids), reverse=True))
    return orjson.dumps({"channel": "book", "type": kind, "data": [{
        "symbol": symbol, "checksum": crc,
        "bids": [{"price": p, "qty": q} for p, q in bids],
        "asks": [{"price": p, "qty": q} for p, q in asks]}]}).decode()


GOOD = ([(99.9, 1.0), (99.8, 2.0)], [(100.1, 1.0), (100.2, 2.0)])


def snapshot(symbol: str, crc: int | None = None) -> str:
    return book(symbol, *GOOD, crc=crc)


def answer(req: Request | int | None, symbol: str | None = None, *, error: str | None = None,
           method: str | None = None) -> str:
    """Kraken's answer to ``req`` (one symbol); ``error`` makes it a failure."""
    req_id = req.req_id if isinstance(req, Request) else req
    frame: dict[str, Any] = {"method": method or (
        req.method if isinstance(req, Request) else "subscribe")}
    if req_id is not None:
        frame["req_id"] = req_id
    if error is None:
        frame["success"] = True
        frame["result"] = {"channel": "book", "depth": 10, "symbol": symbol}
    else:
        frame["success"] = False
        frame["error"] = error
        if symbol is not None:
            frame["symbol"] = symbol
    return orjson.dumps(frame).decode()


# -- driving ------------------------------------------------------------------------------


class Driver:
    """A state machine and a hand-turned clock."""

    def __init__(self, pairs: list[str], options: FeedOptions = OPTIONS) -> None:
        self.now = 100.0
        self.subs = Subscriptions(options, pairs, wall=WALL)

    def connect(self, *, instrument_for: list[str] | None = None) -> None:
        """Connect, send the instrument subscription and answer it with a snapshot."""
        self.subs.connected(self.now, WALL)
        (req,) = self.send()
        assert (req.method, req.channel) == ("subscribe", "instrument")
        self.receive(answer(req))
        self.receive(instrument(*(self.subs.pairs if instrument_for is None
                                  else instrument_for)))

    def send(self, *, advance: bool = True) -> list[Request]:
        """What the machine sends now; then the clock moves past the pacing."""
        out = self.subs.requests_to_send(self.now, WALL)
        if advance:
            self.now += max(self.subs.pacing, 0.001)
        return out

    def book_request(self) -> Request:
        """The next book request (pings aside)."""
        reqs = [r for r in self.send() if r.method != "ping"]
        assert len(reqs) == 1, reqs
        return reqs[0]

    def receive(self, frame: str) -> None:
        self.subs.receive(frame, self.now, WALL)

    def ack_all(self, req: Request) -> None:
        for s in req.symbols:
            self.receive(answer(req, s))

    def subscribe_all(self) -> list[Request]:
        """Send every due request and ack it; returns the requests."""
        sent = []
        while True:
            reqs = [r for r in self.send() if r.method != "ping"]
            if not reqs:
                return sent
            for r in reqs:
                self.ack_all(r)
            sent.extend(reqs)

    def live(self, *pairs: str) -> None:
        """Subscribe everything and send each pair's snapshot."""
        self.subscribe_all()
        for p in pairs:
            self.receive(snapshot(p))
        assert all(self.state(p) is PairState.LIVE for p in pairs)

    def state(self, pair: str) -> PairState:
        return self.subs.pairs[pair].state

    def transitions(self) -> list[tuple[str, str, str]]:
        return [(e.pair, e.old.value, e.new.value) for e in self.subs.events_received()]


def symbols(reqs: list[Request]) -> list[list[str]]:
    return [list(r.symbols) for r in reqs]


# -- sending ------------------------------------------------------------------------------


def test_instrument_first_then_batches_paced_then_nothing() -> None:
    d = Driver(["A/USD", "B/USD", "C/USD", "D/USD", "E/USD"])
    d.subs.connected(d.now, WALL)
    (req,) = d.send()
    assert orjson.loads(req.text()) == {"method": "subscribe", "params": {"channel": "instrument"},
                                        "req_id": req.req_id}
    assert d.send() == []  # book requests wait for the instrument snapshot
    d.receive(instrument("A/USD"))
    first = d.send(advance=False)
    assert symbols(first) == [["A/USD", "B/USD"]]
    assert orjson.loads(first[0].text())["params"] == {
        "channel": "book", "symbol": ["A/USD", "B/USD"], "depth": 10, "snapshot": True}
    # paced: nothing more until subscribe_pacing has passed
    assert d.send(advance=False) == []
    assert d.subs.next_deadline(d.now) == pytest.approx(d.now + 0.1)
    d.now += 0.1
    assert symbols(d.send()) == [["C/USD", "D/USD"]]
    assert symbols(d.send()) == [["E/USD"]]
    assert d.send() == []
    assert not d.subs.idle  # three requests await their answers
    ids = [req.req_id, first[0].req_id]
    assert len(set(ids)) == len(ids)


def test_no_instrument_snapshot_in_time_books_are_subscribed_anyway() -> None:
    d = Driver(["A/USD"])
    d.subs.connected(d.now, WALL)
    d.send()
    assert d.subs.next_deadline(d.now) <= 100.0 + 4.0  # heartbeat_timeout (or a ping sooner)
    d.now = 103.9
    assert [r for r in d.send() if r.channel == "book"] == []
    d.now = 104.0
    assert symbols([r for r in d.send() if r.channel == "book"]) == [["A/USD"]]


def test_idle_once_every_answer_is_in_and_nothing_is_due() -> None:
    d = Driver(["A/USD"])
    assert not d.subs.idle  # not connected
    d.connect()
    req = d.book_request()
    assert not d.subs.idle
    d.ack_all(req)
    assert d.subs.dirty and not d.subs.idle  # the next scan decides
    assert d.send() == []
    assert d.subs.idle
    assert d.subs.subscription("A/USD") is Sub.ACTIVE


def test_a_quiet_line_gets_a_ping_a_busy_one_does_not() -> None:
    d = Driver(["A/USD"])
    d.connect()
    d.subscribe_all()
    d.now += 1.0
    d.receive('{"channel":"heartbeat"}')
    d.now += 1.9
    assert [r.method for r in d.send(advance=False)] == []
    assert d.subs.next_deadline(d.now) == pytest.approx(d.now + 0.1)
    d.now += 0.1  # half the heartbeat timeout since the last frame
    (ping,) = d.send(advance=False)
    assert orjson.loads(ping.text()) == {"method": "ping", "req_id": ping.req_id}
    assert d.send(advance=False) == []  # one ping per half timeout


def test_an_unanswered_request_expires() -> None:
    d = Driver(["A/USD"])
    d.connect()
    req = d.book_request()
    sent_at = d.now - d.subs.pacing
    d.now = sent_at + 4.9
    assert d.subs.expired(d.now) is None
    deadline = d.subs.next_deadline(d.now)
    assert deadline is not None and deadline <= sent_at + 5.0
    d.now = sent_at + 5.0
    assert d.subs.expired(d.now) == f"no answer to subscribe req_id={req.req_id} within 5 s"


def test_a_slow_exchange_that_keeps_answering_is_not_dropped() -> None:
    """The timeout runs from the last answer: late answers that keep coming are progress."""
    d = Driver(["A/USD", "B/USD", "C/USD", "D/USD"])
    d.connect()
    first, second = d.book_request(), d.book_request()
    d.now += 4.0
    d.ack_all(first)  # 4 s late, but an answer
    d.now += 4.0  # the second request is 8 s old, the last answer 4 s
    assert d.subs.expired(d.now) is None
    d.now += 1.0
    assert d.subs.expired(d.now) == f"no answer to subscribe req_id={second.req_id} within 5 s"


# -- answers ------------------------------------------------------------------------------


def test_answers_are_matched_by_req_id_and_symbol() -> None:
    d = Driver(["A/USD", "B/USD"])
    d.connect()
    req = d.book_request()
    d.receive(answer(req, "A/USD"))
    assert d.subs.subscription("A/USD") is Sub.ACTIVE
    assert d.subs.subscription("B/USD") is Sub.PENDING
    # a symbol that was not in that request changes nothing
    d.receive(answer(req, "Z/USD"))
    d.receive(answer(req, "B/USD"))
    assert d.subs.subscription("B/USD") is Sub.ACTIVE
    assert d.subs.expired(d.now + 100) is None  # nothing waits any more


def test_an_answer_to_an_unknown_req_id() -> None:
    d = Driver(["A/USD", "B/USD"], FeedOptions(url=OPTIONS.url, subscribe_batch=1))
    d.connect()
    d.book_request()  # A/USD
    # a success for a symbol being subscribed is taken even without its request...
    d.receive(answer(999, "A/USD"))
    assert d.subs.subscription("A/USD") is Sub.ACTIVE
    # ...a failure is not: its method cannot be trusted without the request
    d.book_request()  # B/USD
    d.receive(answer(999, "B/USD", error="Currency pair not supported B/USD"))
    assert d.state("B/USD") is PairState.CONNECTING
    assert d.subs.subscription("B/USD") is Sub.PENDING
    # and a success for a symbol nobody subscribes to is ignored
    d.receive(answer(None, "Q/USD"))
    assert d.subs.subscription("Q/USD") is Sub.NONE


def test_a_refusal_is_an_error_with_krakens_words_until_asked_again() -> None:
    d = Driver(["A/USD", "X/USD"])
    d.connect()
    req = d.book_request()
    d.receive(answer(req, "A/USD"))
    d.receive(answer(req, "X/USD", error="Currency pair not supported X/USD"))
    st = d.subs.pairs["X/USD"]
    assert st.state is PairState.ERROR and st.error == "Currency pair not supported X/USD"
    assert ("X/USD", "connecting", "error") in d.transitions()
    assert d.subscribe_all() == []  # not asked again on this connection
    with pytest.raises(FeedError, match="X/USD: Currency pair not supported X/USD"):
        d.subs.all_live(["X/USD"])
    # add_pairs names it: asked again, and a success clears the error
    assert d.subs.add_pairs(["X/USD"], WALL) == []  # already tracked
    again = d.book_request()
    assert symbols([again]) == [["X/USD"]]
    d.receive(answer(again, "X/USD"))
    assert d.state("X/USD") is PairState.CONNECTING and d.subs.pairs["X/USD"].error is None
    assert ("X/USD", "error", "connecting") in d.transitions()


def test_an_error_naming_no_symbol_is_for_every_symbol_of_its_request() -> None:
    d = Driver(["A/USD", "B/USD", "C/USD"])
    d.connect()
    req = d.book_request()
    d.receive(answer(req, error="Symbol field must be an array"))
    assert [d.state(p) for p in ("A/USD", "B/USD", "C/USD")] == [
        PairState.ERROR, PairState.ERROR, PairState.CONNECTING]
    assert d.subs.pairs["A/USD"].error == "Symbol field must be an array"
    assert symbols(d.subscribe_all()) == [["C/USD"]]


def test_an_unsubscribe_answered_with_method_subscribe_is_still_an_unsubscribe() -> None:
    d = Driver(["A/USD", "B/USD"])
    d.connect()
    d.live("A/USD", "B/USD")
    d.transitions()
    assert d.subs.remove_pairs(["A/USD"]) == ["A/USD"]
    unsub = d.book_request()
    assert (unsub.method, unsub.symbols) == ("unsubscribe", ("A/USD",))
    assert orjson.loads(unsub.text())["params"] == {"channel": "book", "symbol": ["A/USD"],
                                                    "depth": 10}
    d.receive(answer(unsub, "A/USD", error="Subscription Not Found", method="subscribe"))
    assert d.subs.subscription("A/USD") is Sub.NONE
    assert d.transitions() == []  # nobody went to error
    assert d.send() == [] and d.subs.idle
    # tracked again: subscribed afresh
    d.subs.add_pairs(["A/USD"], WALL)
    assert symbols([d.book_request()]) == [["A/USD"]]


def test_already_subscribed_cycles_the_pair_for_a_fresh_snapshot() -> None:
    d = Driver(["A/USD"])
    d.connect()
    req = d.book_request()
    d.receive(answer(req, "A/USD", error="Already subscribed"))
    assert d.state("A/USD") is PairState.RESYNCING
    assert d.subs.pairs["A/USD"].resyncs == 1 and d.subs.pairs["A/USD"].error is None
    unsub = d.book_request()
    assert unsub.method == "unsubscribe"
    d.ack_all(unsub)
    sub = d.book_request()
    assert (sub.method, sub.symbols) == ("subscribe", ("A/USD",))
    d.ack_all(sub)
    d.receive(snapshot("A/USD"))
    assert d.state("A/USD") is PairState.LIVE


def test_exceeded_msg_rate_slows_down_and_asks_again_without_refusing() -> None:
    d = Driver(["A/USD", "B/USD", "C/USD"])
    d.connect()
    req = d.book_request()
    d.receive(answer(req, "A/USD"))
    d.receive(answer(req, "B/USD", error="Exceeded msg rate"))
    assert d.state("B/USD") is PairState.CONNECTING and d.subs.pairs["B/USD"].error is None
    assert d.subs.subscription("B/USD") is Sub.NONE
    assert d.subs.pacing == SLOW_PACING and d.subs.rate_limited == 1
    # nothing goes before the slower pacing has passed
    at = d.now
    assert d.send(advance=False) == []
    assert d.subs.next_deadline(at) == pytest.approx(at + SLOW_PACING)
    d.now = at + SLOW_PACING
    again = d.book_request()
    assert symbols([again]) == [["B/USD", "C/USD"]]
    # each complaint doubles the pause, up to a ceiling
    for _ in range(10):
        d.receive(answer(again.req_id, error="Exceeded msg rate"))
    assert d.subs.pacing == MAX_PACING
    # requests answered without complaint ease it back to the setting
    for _ in range(40):
        d.now += d.subs.pacing
        r = d.book_request()
        d.ack_all(r)
        if d.subs.subscription("B/USD") is Sub.ACTIVE:
            d.subs.remove_pairs(["B/USD"])  # keep requests coming
        elif "B/USD" not in d.subs.pairs:
            d.subs.add_pairs(["B/USD"], WALL)
    assert d.subs.pacing == pytest.approx(OPTIONS.subscribe_pacing)
    assert all(st.state is not PairState.ERROR for st in d.subs.pairs.values())


def test_exceeded_msg_rate_on_an_unsubscribe_or_unmatched_or_instrument() -> None:
    d = Driver(["A/USD", "B/USD"])
    d.subs.connected(d.now, WALL)
    (inst,) = d.send()
    d.receive(answer(inst, error="Exceeded msg rate"))
    d.now += d.subs.pacing
    (inst2,) = d.send()
    assert inst2.channel == "instrument"  # asked again, later
    d.receive(instrument("A/USD", "B/USD"))
    d.live("A/USD", "B/USD")
    d.subs.remove_pairs(["A/USD"])
    unsub = d.book_request()
    d.receive(answer(unsub, "A/USD", error="Exceeded msg rate", method="unsubscribe"))
    d.now += d.subs.pacing
    again = d.book_request()
    assert (again.method, again.symbols) == ("unsubscribe", ("A/USD",))
    # a complaint answering nothing we know still slows down, and refuses nothing
    before = d.subs.rate_limited
    d.receive('{"error":"Exceeded msg rate","success":false}')
    assert d.subs.rate_limited == before + 1
    assert d.state("B/USD") is PairState.LIVE and d.subs.bad_frames == 0


# -- books and resyncs ---------------------------------------------------------------------


def test_a_checksum_mismatch_resyncs_only_its_pair() -> None:
    d = Driver(["A/USD", "B/USD", "C/USD"])
    d.connect()
    d.live("A/USD", "B/USD", "C/USD")
    d.transitions()
    bids, asks = GOOD
    d.receive(book("B/USD", [(99.9, 3.0)], [], kind="update", crc=123))
    st = d.subs.pairs["B/USD"]
    assert (st.state, st.mismatches, st.resyncs) == (PairState.RESYNCING, 1, 1)
    assert d.subs.book("B/USD") is None and d.subs.book("A/USD") is not None
    assert d.transitions() == [("B/USD", "live", "resyncing")]
    # another bad frame for the void book changes nothing more
    d.receive(book("B/USD", [(99.9, 4.0)], [], kind="update", crc=456))
    assert st.resyncs == 1
    unsub = d.book_request()
    assert (unsub.method, unsub.symbols) == ("unsubscribe", ("B/USD",))
    d.ack_all(unsub)
    sub = d.book_request()
    assert (sub.method, sub.symbols) == ("subscribe", ("B/USD",))
    d.ack_all(sub)
    d.receive(snapshot("B/USD"))
    assert d.state("B/USD") is PairState.LIVE
    assert d.transitions() == [("B/USD", "resyncing", "live")]
    for p in ("A/USD", "C/USD"):
        assert d.subs.pairs[p].resyncs == 0 and d.state(p) is PairState.LIVE


def test_a_crossed_book_is_resynced() -> None:
    d = Driver(["A/USD"])
    d.connect()
    d.live("A/USD")
    d.receive(book("A/USD", [(100.5, 1.0)], [(100.1, 1.0)]))  # checksum right, crossed
    st = d.subs.pairs["A/USD"]
    assert (st.state, st.crossed, st.resyncs) == (PairState.RESYNCING, 1, 1)
    assert d.book_request().method == "unsubscribe"


def test_a_resync_while_a_subscribe_is_pending() -> None:
    d = Driver(["A/USD"])
    d.connect()
    req = d.book_request()
    # the snapshot comes before the ack (a replay does that): the data proves the
    # subscription, but this one fails its checksum
    d.receive(snapshot("A/USD", crc=1))
    assert d.subs.subscription("A/USD") is Sub.ACTIVE
    assert d.state("A/USD") is PairState.RESYNCING
    assert d.subs.expired(d.now + 100) is None  # the data answered the request
    d.receive(answer(req, "A/USD"))  # the late ack changes nothing
    assert d.book_request().method == "unsubscribe"


def test_removed_and_added_back_while_subscribing_is_cycled() -> None:
    d = Driver(["A/USD"])
    d.connect()
    req = d.book_request()
    d.subs.remove_pairs(["A/USD"])
    d.subs.add_pairs(["A/USD"], WALL)
    assert d.send() == []  # still waiting for the first answer
    d.ack_all(req)
    unsub = d.book_request()
    assert (unsub.method, unsub.symbols) == ("unsubscribe", ("A/USD",))
    d.ack_all(unsub)
    assert d.book_request().method == "subscribe"


def test_a_precision_change_resyncs_the_live_pair() -> None:
    d = Driver(["A/USD", "B/USD"])
    d.connect()
    d.live("A/USD", "B/USD")
    d.transitions()
    d.receive(instrument("A/USD", kind="update", pp=2))
    assert d.transitions() == [("A/USD", "live", "resyncing")]
    assert d.state("B/USD") is PairState.LIVE


def test_frames_for_a_pair_not_tracked_are_dropped() -> None:
    d = Driver(["A/USD"])
    d.connect()
    d.live("A/USD")
    d.subs.remove_pairs(["A/USD"])
    d.receive(book("A/USD", [(99.9, 3.0)], [], kind="update"))
    assert "A/USD" not in d.subs.session.books
    d.receive(snapshot("Z/USD"))
    assert "Z/USD" not in d.subs.session.books and d.subs.book("Z/USD") is None


# -- the connection around it -------------------------------------------------------------


def test_a_lost_connection_makes_pairs_stale_and_the_next_one_subscribes_again() -> None:
    """...every pair but one Kraken refused: that one is not resent on every reconnect."""
    d = Driver(["A/USD", "X/USD"])
    d.connect()
    req = d.book_request()
    d.receive(answer(req, "A/USD"))
    d.receive(answer(req, "X/USD", error="Currency pair not supported X/USD"))
    d.receive(snapshot("A/USD"))
    d.transitions()
    d.subs.disconnected("connection closed: 1001", WALL + 5)
    assert d.subs.book("A/USD") is None and d.send() == []
    assert d.transitions() == [("A/USD", "live", "stale")]  # a refused pair stays in error
    assert d.subs.pairs["A/USD"].since == WALL + 5
    d.connect()
    assert d.subs.connections == 2 and d.subs.pairs["A/USD"].reconnects == 1
    again = d.book_request()
    assert symbols([again]) == [["A/USD"]]  # asked again on a new connection, X/USD not
    assert ("A/USD", "stale", "connecting") in d.transitions()
    d.ack_all(again)
    assert d.subscribe_all() == []
    assert d.state("X/USD") is PairState.ERROR
    assert d.subs.pairs["X/USD"].error == "Currency pair not supported X/USD"
    # naming it again asks again, on this connection
    d.subs.add_pairs(["X/USD"], WALL)
    assert symbols([d.book_request()]) == [["X/USD"]]


def test_a_refused_pair_is_not_resent_on_any_reconnect() -> None:
    pairs = [f"X{i:03d}/USD" for i in range(30)]
    d = Driver(["A/USD", *pairs], FeedOptions(url="ws://127.0.0.1:1/v2", subscribe_batch=40))
    d.connect()
    req = d.book_request()
    for p in req.symbols:
        d.receive(answer(req, p, error=None if p == "A/USD" else f"Currency pair not "
                         f"supported {p}"))
    assert d.subscribe_all() == []
    for _ in range(5):
        d.subs.disconnected("connection closed: 1006", WALL)
        d.connect()
        assert symbols(d.subscribe_all()) == [["A/USD"]]
    assert all(d.state(p) is PairState.ERROR for p in pairs)
    # removed and added back: a fresh start, asked again
    d.subs.remove_pairs(["X000/USD"])
    d.subs.add_pairs(["X000/USD"], WALL)
    assert symbols(d.subscribe_all()) == [["X000/USD"]]


def test_stopping_on_purpose_leaves_states_as_they_were() -> None:
    d = Driver(["A/USD"])
    d.connect()
    d.live("A/USD")
    d.subs.disconnected("stopped", WALL, stale=False)
    assert d.state("A/USD") is PairState.LIVE
    assert d.subs.book("A/USD") is None  # but no book is served without a connection


def test_status_bad_frames_and_readers() -> None:
    d = Driver(["A/USD"])
    d.connect()
    d.receive('{"channel":"status","type":"update","data":[{"system":"maintenance"}]}')
    assert d.subs.system == "maintenance"
    d.receive("not json")
    d.receive('{"channel":"mystery"}')
    assert d.subs.bad_frames == 2
    copy = d.subs.status()
    copy["A/USD"].frames = 99
    assert d.subs.pairs["A/USD"].frames == 0
    assert not d.subs.all_live()
    d.live("A/USD")
    assert d.subs.all_live() and d.subs.all_live(["A/USD"])
    assert not d.subs.all_live(["Q/USD"])  # not tracked: never live


def test_pairs_are_checked() -> None:
    with pytest.raises(InvalidPair):
        Subscriptions(OPTIONS, ["BTCUSD"], wall=WALL)
    subs = Subscriptions(OPTIONS, ["A/USD", "A/USD"], wall=WALL)
    assert list(subs.pairs) == ["A/USD"]
    with pytest.raises(InvalidPair):
        subs.add_pairs(["A/USD", "bad pair"], WALL)
    assert list(subs.pairs) == ["A/USD"]  # nothing half-added
    assert subs.add_pairs(["B/USD", "A/USD"], WALL) == ["B/USD"]
    assert subs.remove_pairs(["B/USD", "Q/USD"]) == ["B/USD"]
