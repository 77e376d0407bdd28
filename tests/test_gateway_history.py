"""``/api/analysis`` (gateway/history.py): history in every format, windows, the summary."""

from __future__ import annotations

import csv
import io

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from gateway_support import Stack, eventually, login, sample_snapshot, served, wait_snapshots
from krakenstream.core.snapshot import CSV_COLUMNS, Snapshot
from krakenstream.core.wide import wide_columns, wide_row
from krakenstream.store.archive.columns import from_table


@pytest.mark.slow
async def test_history_formats_carry_the_same_snapshots(gw: Stack) -> None:
    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw, n=6)
    q = "order=asc&limit=5"
    as_json = (await c.get(f"/api/analysis/history/ETH-USD?{q}", headers=gw.auth)).json()
    r = await c.get(f"/api/analysis/history/ETH%2FUSD?{q}&format=ndjson", headers=gw.auth)
    assert r.headers["content-type"] == "application/x-ndjson"
    as_ndjson = [orjson.loads(line) for line in r.text.splitlines()]
    r = await c.get(f"/api/analysis/history/eth-usd?{q}&format=csv&layout=levels",
                    headers=gw.auth)
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="ETH-USD.csv"'
    rows = list(csv.reader(io.StringIO(r.text)))
    # the wide layout, CSV's default: a column per price and size, the daemon's depth
    r = await c.get(f"/api/analysis/history/eth-usd?{q}&format=csv", headers=gw.auth)
    assert r.headers["content-disposition"] == 'attachment; filename="ETH-USD.csv"'
    wide = list(csv.reader(io.StringIO(r.text)))
    r = await c.get(f"/api/analysis/history/eth-usd?{q}&format=csv&depth=3", headers=gw.auth)
    wide3 = list(csv.reader(io.StringIO(r.text)))
    r = await c.get(f"/api/analysis/history/eth-usd?{q}&format=parquet", headers=gw.auth)
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    assert r.headers["content-disposition"] == 'attachment; filename="ETH-USD.parquet"'
    parquet = pq.read_table(io.BytesIO(r.content))

    assert as_json["order"] == "asc" and len(as_json["snapshots"]) == 5
    assert as_ndjson == as_json["snapshots"]
    assert rows[0] == CSV_COLUMNS
    snaps = [Snapshot.from_dict(d) for d in as_json["snapshots"]]
    assert rows[1:] == [s.csv_row() for s in snaps]
    depth = gw.services.settings.kraken.depth
    assert wide[0] == wide_columns(depth) and wide[1:] == [wide_row(s, depth) for s in snaps]
    assert wide3[0] == wide_columns(3) and wide3[1:] == [wide_row(s, 3) for s in snaps]
    assert from_table(parquet, "ETH/USD") == snaps
    assert parquet.column("pair").to_pylist() == ["ETH/USD"] * 5
    ts = [d["ts"] for d in as_json["snapshots"]]
    assert ts == sorted(ts)

    # since/until: epoch ms and ISO 8601 (Z or an offset) select the same window
    lo, hi = ts[1], ts[3]
    iso_lo = as_json["snapshots"][1]["time"]
    iso_hi = as_json["snapshots"][3]["time"].replace("Z", "+00:00")
    for since, until in ((lo, hi), (iso_lo, iso_hi)):
        r = await c.get("/api/analysis/history/ETH-USD", headers=gw.auth,
                        params={"since": since, "until": until, "order": "asc"})
        assert [d["ts"] for d in r.json()["snapshots"]] == ts[1:4]
    # an empty window of a known pair is an empty list, not a 404
    r = await c.get("/api/analysis/history/ETH-USD?since=0&until=1&format=ndjson",
                    headers=gw.auth)
    assert r.status_code == 200 and r.text == ""
    r = await c.get("/api/analysis/history/ETH-USD?since=0&until=1", headers=gw.auth)
    assert r.json() == {"pair": "ETH/USD", "order": "desc", "snapshots": []}
    r = await c.get("/api/analysis/history/ETH-USD?since=0&until=1&format=csv",
                    headers=gw.auth)
    assert r.status_code == 200 and r.text.splitlines() == [",".join(wide_columns(depth))]
    r = await c.get("/api/analysis/history/ETH-USD?since=0&until=1&format=parquet",
                    headers=gw.auth)
    assert r.status_code == 200 and pq.read_table(io.BytesIO(r.content)).num_rows == 0
    for fmt in ("csv", "parquet"):  # an unknown pair: 404, whatever the format
        r = await c.get(f"/api/analysis/history/DOGE-USD?format={fmt}", headers=gw.auth)
        assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await c.get(f"/api/analysis/history/ETH-USD?format=csv&depth={depth + 1}",
                    headers=gw.auth)
    assert r.status_code == 422 and "depth" in r.json()["error"]
    r = await c.get("/api/analysis/history/ETH-USD?format=csv&layout=deep", headers=gw.auth)
    assert r.status_code == 422


@pytest.mark.slow
async def test_summary_over_the_stored_window(gw: Stack) -> None:
    from krakenstream.core.analysis import SeriesSummary

    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw, n=6)
    stored = (await c.get("/api/analysis/history/ETH-USD?order=asc",
                          headers=gw.auth)).json()["snapshots"]
    window = stored[1:5]
    params = {"since": window[0]["ts"], "until": window[-1]["time"]}
    r = await c.get("/api/analysis/summary/ETH-USD", headers=gw.auth, params=params)
    assert r.status_code == 200, r.text
    acc = SeriesSummary()
    for d in window:
        acc.add_dict(d)
    assert r.json() == acc.result()
    assert r.json()["snapshots"] == 4 and r.json()["pair"] == "ETH/USD"
    # limit counts from the newest end
    r = await c.get("/api/analysis/summary/eth-usd?limit=2", headers=gw.auth)
    assert r.status_code == 200 and r.json()["snapshots"] == 2
    r = await c.get("/api/analysis/summary/ETH-USD")
    assert r.status_code == 401
    r = await c.get("/api/analysis/summary/NOPE-USD", headers=gw.auth)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await c.get("/api/analysis/summary/ETH-USD?limit=0", headers=gw.auth)
    assert r.status_code == 422
    r = await c.get("/api/analysis/summary/ETH-USD?since=0&until=1", headers=gw.auth)
    assert r.status_code == 200 and r.json()["snapshots"] == 0


@pytest.mark.slow
async def test_heavy_reads_past_their_slots_are_503_with_retry_after(gw: Stack) -> None:
    """gateway.max_summaries (4) summaries and gateway.max_exports (8) history answers at
    once; one more is refused at once, never queued (issue 14 item 8)."""
    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw, n=2)
    state = gw.app.state.gateway
    held = [state.summaries.take() for _ in range(state.summaries.size)]
    r = await c.get("/api/analysis/summary/ETH-USD", headers=gw.auth)
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    assert r.json()["code"] == "unavailable"
    assert r.json()["error"] == ("4 summaries are running, the most at once "
                                 "(gateway.max_summaries): try again in 2 s")
    for slot in held:
        slot.release()
    r = await c.get("/api/analysis/summary/ETH-USD", headers=gw.auth)
    assert r.status_code == 200 and r.json()["snapshots"] >= 2
    assert state.summaries.busy == 0

    held = [state.exports.take() for _ in range(state.exports.size)]
    r = await c.get("/api/analysis/history/ETH-USD?format=csv", headers=gw.auth)
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    for slot in held:
        slot.release()
    r = await c.get("/api/analysis/history/ETH-USD?format=csv", headers=gw.auth)
    assert r.status_code == 200 and state.exports.busy == 0  # given back once sent
    r = await c.get("/api/analysis/history/NOPE-USD", headers=gw.auth)
    assert r.status_code == 404 and state.exports.busy == 0  # and when it fails
    health = (await c.get("/health")).json()["heavy_reads"]
    assert health == {"summaries": {"busy": 0, "size": 4, "refused": 1},
                      "history": {"busy": 0, "size": 8, "refused": 1}}
    assert 'kms_heavy_reads_refused_total{kind="summary"} 1.0' in (await c.get("/metrics")).text


@pytest.mark.slow
async def test_wide_csv_and_parquet_answers_hold_an_export_slot(gw: Stack) -> None:
    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw, n=2)
    state = gw.app.state.gateway
    held = [state.exports.take() for _ in range(state.exports.size)]
    for fmt in ("csv", "parquet"):
        r = await c.get(f"/api/analysis/history/ETH-USD?format={fmt}", headers=gw.auth)
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
    for slot in held:
        slot.release()
    for fmt in ("csv", "parquet"):
        r = await c.get(f"/api/analysis/history/ETH-USD?format={fmt}", headers=gw.auth)
        assert r.status_code == 200 and state.exports.busy == 0  # given back once sent
        r = await c.get(f"/api/analysis/history/NOPE-USD?format={fmt}", headers=gw.auth)
        assert r.status_code == 404 and state.exports.busy == 0  # and when it fails


@pytest.mark.slow
async def test_an_export_the_client_leaves_gives_its_slot_back(gw: Stack) -> None:
    gw.token = await login(gw.client)
    store = gw.services.store
    assert store is not None
    await store.add([sample_snapshot(1_700_000_000_000 + i * 1000) for i in range(3000)])
    async with served(gw.services) as (base, _server, app):
        state = app.state.gateway
        async with httpx.AsyncClient(base_url=base) as http:
            async with http.stream("GET", "/api/analysis/history/ETH-USD?format=ndjson",
                                   headers=gw.auth) as r:
                assert r.status_code == 200
                async for _ in r.aiter_bytes():
                    break  # the first chunk, then gone
        await eventually(lambda: _true(state.exports.busy == 0))


async def _true(value: bool) -> bool:
    return value
