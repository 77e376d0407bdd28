"""``daemon/metrics.py``: a registry per daemon, and a pair's series gone once it is no
longer tracked (every one labelled by pair, so a scrape stays as large as what is tracked)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from krakenstream.daemon.metrics import Metrics


def pair_metrics(m: Metrics) -> list[Gauge | Counter | Histogram]:
    """Every metric of ``m`` labelled by pair, found by reading them (none forgotten)."""
    return [v for v in vars(m).values()
            if isinstance(v, Gauge | Counter | Histogram) and "pair" in v._labelnames]


def test_two_daemons_in_one_process_do_not_share_or_collide() -> None:
    a, b = Metrics(), Metrics()  # a second registry: no "Duplicated timeseries" error
    a.snapshots_stored.inc(3)
    assert b"kms_snapshots_stored_total 3.0" in a.render()
    assert b"kms_snapshots_stored_total 0.0" in b.render()


def test_every_name_has_the_prefix() -> None:
    names = {metric.name for metric in Metrics().registry.collect()}
    assert names and all(n.startswith("kms_") for n in names), sorted(names)


def test_forgetting_a_pair_removes_every_series_of_it_and_only_of_it() -> None:
    m = Metrics()
    labelled = pair_metrics(m)
    assert len(labelled) == 6  # forget_pair's list must grow with this one
    for metric in labelled:
        for pair in ("BTC/USD", "ETH/USD"):
            if isinstance(metric, Histogram):
                metric.labels(pair).observe(0.1)
            else:
                metric.labels(pair).inc()
    m.forget_pair("BTC/USD")
    text = m.render().decode()
    assert 'pair="BTC/USD"' not in text
    assert text.count('pair="ETH/USD"') >= len(labelled)
    m.forget_pair("BTC/USD")  # again, or a pair that never had a series: nothing to do
    m.forget_pair("NEVER/SEEN")
    assert text == m.render().decode()
