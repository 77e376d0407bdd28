"""The compact stored form (core/codec.py): exact round trip, the same answers byte for byte
as the snapshot's own JSON and CSV, its size, and what it refuses."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import structs

from krakenstream.core import codec
from krakenstream.core.record import JsonRecord, decode_record
from krakenstream.core.snapshot import Snapshot, csv_line
from krakenstream.core.times import iso_us
from test_store_support import recorded, synthetic

KRAKEN_TS = "2023-07-30T15:30:49.008834Z"


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    pp, qp = draw(st.integers(0, 10)), draw(st.integers(0, 10))
    price = st.integers(1, 10**15)
    qty = st.integers(0, 10**18)
    bids = sorted(set(draw(st.lists(price, max_size=25))), reverse=True)
    asks = sorted(set(draw(st.lists(price, max_size=25))))
    exchange = draw(st.one_of(
        st.none(), st.just(KRAKEN_TS), st.text(max_size=40),
        st.datetimes().map(lambda d: d.isoformat(timespec="microseconds") + "Z"),
        st.sampled_from(["2023-07-30T15:30:49.0088Z", "2023-07-30T15:30:49.008834+00:00",
                         "2023-07-30 15:30:49.008834Z", "0001-01-01T00:00:00.000000Z"]),
    ))
    return Snapshot(
        pair="BTC/USD", ts=draw(st.integers(0, 4_102_444_800_000)), exchange_ts=exchange,
        seq=draw(st.integers(0, 2**63)), price_precision=pp, qty_precision=qp,
        bids=tuple((p, draw(qty)) for p in bids), asks=tuple((p, draw(qty)) for p in asks),
        checksum=draw(st.integers(0, 2**32 - 1)), gap_before=draw(st.booleans()),
        origin=draw(st.one_of(st.just(""), st.text(max_size=12))),
    )


@given(snapshots(), st.booleans())
@pytest.mark.slow
def test_round_trip_and_renderings_are_exact(snap: Snapshot, mark: bool) -> None:
    rec = decode_record(codec.encode(snap))
    assert isinstance(rec, codec.CompactRecord)
    assert (rec.seq, rec.origin, rec.gap_before) == (snap.seq, snap.origin, snap.gap_before)
    assert rec.snapshot(snap.pair, snap.gap_before) == snap
    marked = replace(snap, gap_before=mark)
    assert rec.snapshot(snap.pair, mark) == marked
    assert rec.json(snap.pair, mark) == marked.to_json()
    assert rec.csv(snap.pair, mark) == csv_line(marked.csv_row())


def test_real_books_round_trip(shared_recording) -> None:  # type: ignore[no-untyped-def]
    for snap in recorded(shared_recording):
        rec = codec.decode(codec.encode(snap))
        assert rec.snapshot(snap.pair, snap.gap_before) == snap
        assert rec.json(snap.pair, snap.gap_before) == snap.to_json()


def test_a_depth_10_snapshot_is_a_fifth_of_its_json() -> None:
    snap = replace(synthetic("BTC/USD", 1_700_000_000_000, 12_345), origin="ab12cd34")
    data = codec.encode(snap)
    assert len(data) <= 200 < 900 <= len(snap.to_json())
    # no pair inside: the store's key holds it
    assert b"BTC" not in data
    assert codec.decode(data).snapshot("ETH/USD", False).pair == "ETH/USD"


def test_kraken_timestamps_are_kept_as_microseconds_only_when_exact() -> None:
    assert codec.exchange_int(KRAKEN_TS) == 1_690_731_049_008_834
    assert iso_us(1_690_731_049_008_834) == KRAKEN_TS
    for text in ("2023-07-30T15:30:49.0088Z", "2023-07-30T15:30:49.008834+00:00",
                 "2023-07-30T15:30:49Z", "not a time at all", "", "2023-02-30T15:30:49.008834Z"):
        assert codec.exchange_int(text) == text
    assert codec.exchange_int(None) is None


_TS_CHARS = st.sampled_from("0123456789:-.TZ +١²x")


@given(st.integers(0, 253_402_300_799_999_999), st.lists(
    st.tuples(st.integers(0, 26), _TS_CHARS), max_size=3))
def test_the_fast_timestamp_path_agrees_with_the_whole_parse(us: int,
                                                               edits: list[tuple[int, str]]
                                                               ) -> None:
    """A timestamp read by its fields (its date seen before) is what the whole parse gives,
    exact or damaged: other characters anywhere, a field out of range, Unicode digits."""
    text = list(iso_us(us))
    codec.exchange_int(iso_us(us))  # its date is seen: the fast path is open to it
    for at, char in edits:
        text[at] = char
    damaged = "".join(text)
    assert codec.exchange_int(damaged) == codec.exchange_int_parsed(damaged)
    assert codec.exchange_int(iso_us(us)) == us
    for hms in ("24:00:00", "23:60:00", "23:59:60"):  # out of range, on a date already seen
        text = iso_us(us)
        bad = text[:11] + hms + text[19:]
        assert codec.exchange_int(bad) == codec.exchange_int_parsed(bad) == bad


@pytest.mark.parametrize("data", [
    b"\x01", b"\x01\x93\x01\x02\x03", b"\x01" + b"\xff" * 10, b"\x02abc",
    codec.encode(synthetic("BTC/USD", 0))[:-3],
])
def test_a_damaged_row_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_record(data)


def test_an_odd_level_list_or_a_timestamp_out_of_range_is_refused() -> None:
    good = codec.decode(codec.encode(synthetic("BTC/USD", 0)))
    for bad in (structs.replace(good, bids=good.bids[:-1]),
                structs.replace(good, exchange=10**18),
                structs.replace(good, price_precision=99)):
        with pytest.raises(ValueError):
            codec.decode(codec.MAGIC + codec._ENCODER.encode(bad))


def test_a_number_beyond_64_bits_is_stored_as_json() -> None:
    big = replace(synthetic("BTC/USD", 0), bids=((10**30, 1),))
    data = codec.encode(big)
    assert data[:1] == b"{"
    assert decode_record(data).snapshot("BTC/USD", False) == big


def test_json_rows_are_still_read() -> None:
    snap = replace(synthetic("ETH/USD", 1_700_000_000_000, 3), gap_before=True)
    rec = decode_record(snap.to_json())
    assert isinstance(rec, JsonRecord)
    assert rec.json("ETH/USD", True) == snap.to_json()
    assert rec.snapshot("ETH/USD", True) == snap
    assert rec.json("ETH/USD", False) == replace(snap, gap_before=False).to_json()


@given(snapshots())
@pytest.mark.slow
def test_an_encoded_row_read_back_keeps_its_bytes_and_gives_its_snapshot(snap: Snapshot) -> None:
    data = codec.encode(snap)
    if data[:1] != codec.MAGIC:  # beyond 64 bits: JSON, encoded anew (below)
        return
    got = codec.Encoded.read(snap.pair, data)
    assert (got.pair, got.ts) == (snap.pair, snap.ts)
    assert got.data is data  # as it came: nothing encoded again
    assert got.snapshot() == snap and got.snapshot() is got.snapshot()  # built once


def test_encoded_of_a_snapshot_and_of_its_json() -> None:
    snap = replace(synthetic("ETH/USD", 1_700_000_000_000, 3), gap_before=True)
    made = codec.Encoded.of(snap)
    assert (made.pair, made.ts, made.data) == ("ETH/USD", snap.ts, codec.encode(snap))
    assert made.snapshot() is snap
    # a JSON snapshot (what the Kafka bus wrote before the compact form) is encoded anew,
    # named by its own pair
    older = codec.Encoded.read("ignored", snap.to_json())
    assert (older.pair, older.ts, older.data) == ("ETH/USD", snap.ts, codec.encode(snap))
    assert older.snapshot() == snap
    big = replace(snap, bids=((10**30, 1),))  # stays JSON, as the store keeps it
    assert codec.Encoded.read("ETH/USD", big.to_json()).data == codec.encode(big)
    assert repr(made) == f"Encoded('ETH/USD', ts={snap.ts}, {len(made.data)} bytes)"


@pytest.mark.parametrize("data", [
    b"\x01", b"\x01\x93\x01\x02\x03", b"\x02abc", b"[1,2]", b'{"schema":1}',
    codec.encode(synthetic("BTC/USD", 0))[:-3],
])
def test_an_encoded_row_that_is_no_snapshot_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        codec.Encoded.read("BTC/USD", data)
