"""Prometheus metrics of one daemon, in a registry of its own.

A registry per daemon (not the process-global default) so several daemons, or many tests,
can live in one process without colliding. The gateway serves it at ``GET /metrics``.

Series labelled by pair exist for the pairs tracked only: :meth:`Metrics.forget_pair` removes
a pair's series when it stops being tracked (untracked, delisted, refused by Kraken), so the
registry, and every scrape, stays as large as what is tracked now.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """Every metric the roles update. Names are prefixed ``kms_``."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        # feed: copied from the feed client's counters at scrape time
        # (OrderbookRole.export_metrics)
        self.feed_frames = Gauge("kms_feed_frames", "Book frames received", ["pair"], registry=r)
        self.feed_mismatches = Gauge(
            "kms_feed_checksum_mismatches", "Book frames whose checksum did not match",
            ["pair"], registry=r)
        self.feed_resyncs = Gauge("kms_feed_resyncs", "Resubscriptions after a void book",
                                  ["pair"], registry=r)
        self.feed_reconnects = Gauge("kms_feed_reconnects", "Reconnections of the feed",
                                     registry=r)
        self.feed_live = Gauge("kms_feed_pair_live", "1 if the pair's book is live, else 0",
                               ["pair"], registry=r)
        self.feed_pairs = Gauge("kms_feed_pairs", "Pairs tracked, by feed state", ["state"],
                                registry=r)
        self.feed_refused = Gauge(
            "kms_feed_refused", "Pairs Kraken refused (and the orderbook role dropped) since "
            "the start", registry=r)
        # orderbook role
        self.snapshots_published = Counter(
            "kms_snapshots_published", "Snapshots handed to the bus", ["pair"], registry=r)
        self.snapshots_skipped = Counter(
            "kms_snapshots_skipped",
            "Ticks with no snapshot because the pair's book was not live", ["pair"], registry=r)
        self.tick_lag = Histogram(
            "kms_tick_lag_seconds", "How late a publish tick ran after its wall-clock second",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0), registry=r)
        # analysis role
        self.snapshots_stored = Counter(
            "kms_snapshots_stored", "Snapshots newly written to history", registry=r)
        self.snapshots_duplicate = Counter(
            "kms_snapshots_duplicate", "Snapshots received again and stored once", registry=r)
        self.store_errors = Counter(
            "kms_store_errors", "History writes that failed (retried)", registry=r)
        self.publish_to_store = Histogram(
            "kms_publish_to_store_seconds", "From a snapshot's tick to its history write",
            # fine around the targets (p99 under 0.1 s embedded, 0.25 s on Kafka + Redis),
            # which bench/scale.py reads from these buckets
            buckets=(0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1,
                     0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 1.0, 2.5, 5.0, 10.0), registry=r)
        # bus
        self.bus_dropped = Gauge("kms_bus_dropped", "Snapshots the bus dropped", registry=r)
        self.bus_losing = Gauge(
            "kms_bus_losing", "1 while snapshots are dropped on their way to history (a group "
            "queue or the Kafka buffer is full)", registry=r)
        self.bus_client_errors = Gauge(
            "kms_bus_client_errors", "Errors of the bus's client library (aiokafka), counted "
            "instead of logged", registry=r)
        self.history_failing = Gauge(
            "kms_history_write_failing", "1 while the history writer's writes fail (retried)",
            registry=r)
        self.problems = Gauge(
            "kms_health_problems", "Problems this process sees without probing (a role's task "
            "dead, history not written, snapshots lost); /health lists them", registry=r)
        self.bus_published = Gauge("kms_bus_published", "Snapshots the bus delivered to the "
                                   "broker (Kafka) or to its queues (memory)", registry=r)
        # gateway
        self.http_requests = Counter(
            "kms_http_requests", "HTTP requests by route and status",
            ["method", "route", "status"], registry=r)
        self.http_duration = Histogram(
            "kms_http_request_seconds", "HTTP request duration by route", ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r)
        self.http_header_timeouts = Counter(
            "kms_http_header_timeouts",
            "Connections closed (408) because a request's headers took longer than "
            "gateway.header_timeout", registry=r)
        self.ws_clients = Gauge("kms_ws_clients", "Open WebSocket stream clients", registry=r)
        self.heavy_refused = Counter(
            "kms_heavy_reads_refused", "Summaries and history answers refused (503) because "
            "gateway.max_summaries or gateway.max_exports were running", ["kind"], registry=r)
        self.heavy_busy = Gauge("kms_heavy_reads", "Summaries and history answers running",
                                ["kind"], registry=r)
        self.ws_refused = Counter(
            "kms_ws_refused", "WebSocket streams refused (close 4429): the gateway's most "
            "(total) or the account's most (user) were open", ["limit"], registry=r)
        self.ws_cut_off = Counter("kms_ws_cut_off", "WebSocket clients cut off for being slow",
                                  registry=r)
        self.logins_failed = Gauge("kms_logins_failed", "Failed logins", registry=r)
        self.logins_throttled = Gauge("kms_logins_throttled", "Logins refused by the throttle",
                                      registry=r)

    def forget_pair(self, pair: str) -> None:
        """Remove every series of ``pair`` (it is no longer tracked)."""
        for metric in (self.feed_frames, self.feed_mismatches, self.feed_resyncs,
                       self.feed_live, self.snapshots_published, self.snapshots_skipped):
            with contextlib.suppress(KeyError):  # a series never made for this pair
                metric.remove(pair)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
