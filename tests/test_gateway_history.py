"""``/api/analysis`` (gateway/history.py): history in every format, windows, the summary."""

from __future__ import annotations

import csv
import io

import orjson

from gateway_support import Stack, login, wait_snapshots
from krakenstream.core.snapshot import CSV_COLUMNS, Snapshot


async def test_history_formats_carry_the_same_snapshots(gw: Stack) -> None:
    c = gw.client
    gw.token = await login(c)
    await wait_snapshots(gw, n=6)
    q = "order=asc&limit=5"
    as_json = (await c.get(f"/api/analysis/history/ETH-USD?{q}", headers=gw.auth)).json()
    r = await c.get(f"/api/analysis/history/ETH%2FUSD?{q}&format=ndjson", headers=gw.auth)
    assert r.headers["content-type"] == "application/x-ndjson"
    as_ndjson = [orjson.loads(line) for line in r.text.splitlines()]
    r = await c.get(f"/api/analysis/history/eth-usd?{q}&format=csv", headers=gw.auth)
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="ETH-USD.csv"'
    rows = list(csv.reader(io.StringIO(r.text)))

    assert as_json["order"] == "asc" and len(as_json["snapshots"]) == 5
    assert as_ndjson == as_json["snapshots"]
    assert rows[0] == CSV_COLUMNS
    assert rows[1:] == [Snapshot.from_dict(d).csv_row() for d in as_json["snapshots"]]
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
