"""``/api/analysis/bars`` (daemon/gateway/bars.py): bars from the store and the archive alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive_support import DAY0, sim_snapshots
from gateway_support import login, settings_for, stack
from krakenstream.core.bars import BAR_COLUMNS, bars
from krakenstream.core.gaps import mark_gaps
from krakenstream.daemon.gateway import bars as gateway_bars

HOLE = 5_000  # a seq never published: the snapshot after it is marked


@pytest.mark.slow
async def test_bars_span_the_store_and_the_archive(kms_home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(kms_home, KMS_STORE_HISTORY_LIMIT="2000")
    async with stack(settings, roles=("analysis", "gateway")) as s:
        s.token = await login(s.client)
        services = s.services
        assert services.store is not None and services.roller is not None
        snaps = [s for s in sim_snapshots("ETH/USD", 3 * 3600, rate=3, origin="o1")
                 if s.seq != HOLE]
        for i in range(0, len(snaps), 500):  # what the history writer does with each batch
            await services.store.add(snaps[i:i + 500])
            services.roller.note(snaps[i:i + 500])
            await services.roller.keep_up()
        await services.roller.idle()
        marked = list(zip(snaps, mark_gaps(snaps), strict=True))
        want = [b.to_dict() for b in bars(marked, 300_000)]
        r = await s.client.get("/api/analysis/bars/ETH-USD", headers=s.auth,
                               params={"every": "5m", "since": DAY0})
        assert r.status_code == 200, r.text[:300]
        body = r.json()
        assert body["pair"] == "ETH/USD" and body["every"] == "5m"
        assert body["bars"] == want and len(want) == 36
        assert [b["time"] for b in body["bars"] if b["gap"]] == ["2023-11-14T01:20:00.000Z"]
        # without since: what the window store holds (its 2,000 newest rows)
        r = await s.client.get("/api/analysis/bars/ETH-USD", headers=s.auth,
                               params={"every": "1h"})
        assert sum(b["snapshots"] for b in r.json()["bars"]) == 2000
        # CSV: the same bars
        r = await s.client.get("/api/analysis/bars/ETH-USD", headers=s.auth,
                               params={"every": "5m", "since": DAY0, "until": DAY0 + 599_999,
                                       "format": "csv"})
        lines = r.text.splitlines()
        assert lines[0].split(",") == list(BAR_COLUMNS) and len(lines) == 3
        assert lines[1].split(",")[4] == want[0]["open"]
        # bad input: 422 naming it; an unknown pair: 404; an empty window of a known one: []
        for params in ({"every": "7x"}, {"every": "8d"}, {"since": "yesterday"}):
            r = await s.client.get("/api/analysis/bars/ETH-USD", headers=s.auth,
                                   params=params)
            assert r.status_code == 422 and r.json()["code"], r.text
        monkeypatch.setattr(gateway_bars, "MAX_BARS", 100)  # more bars than an answer holds
        r = await s.client.get("/api/analysis/bars/ETH-USD", headers=s.auth,
                               params={"every": "1m", "since": 0})
        assert r.status_code == 422 and "more than 100 bars" in r.json()["error"], r.text[:300]
        r = await s.client.get("/api/analysis/bars/BTC-USD", headers=s.auth)
        assert r.status_code == 404
        r = await s.client.get("/api/analysis/bars/ETH-USD", headers=s.auth,
                               params={"since": 0, "until": 1000})
        assert r.status_code == 200 and r.json()["bars"] == []
        r = await s.client.get("/api/analysis/bars/ETH-USD")
        assert r.status_code == 401
        # a heavy read: bounded by gateway.max_summaries like a summary, 503 past it
        state = s.app.state.gateway
        held = [state.summaries.take() for _ in range(state.summaries.size)]
        r = await s.client.get("/api/analysis/bars/ETH-USD", headers=s.auth)
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
        for slot in held:
            slot.release()
        r = await s.client.get("/api/analysis/bars/ETH-USD", headers=s.auth)
        assert r.status_code == 200 and state.summaries.busy == 0
