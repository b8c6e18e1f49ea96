"""`GET /metrics`: Prometheus text format (prometheus-client), one registry per server.

The live gauges are read from the live state when scraped, so they are never stale;
the counters count deliveries accepted (by event), ignored, duplicate and rejected (by
reason), jobs classified and records written; the worker's backlog is a gauge.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from multivac.serve.live import LiveState

CONTENT_TYPE: str = CONTENT_TYPE_LATEST
MAX_IGNORED_NAMES = 100


class _LiveCollector(Collector):
    def __init__(self, live: LiveState, backlog: Callable[[], int]) -> None:
        self.live = live
        self.backlog = backlog

    def describe(self) -> list[Metric]:
        return []  # the label set is only known when scraped

    def collect(self) -> Iterator[Metric]:
        queued = GaugeMetricFamily(
            "multivac_jobs_queued", "Jobs waiting for a runner now.", labels=["runner_label"]
        )
        running = GaugeMetricFamily(
            "multivac_jobs_running", "Jobs running now.", labels=["runner_label"]
        )
        oldest = GaugeMetricFamily(
            "multivac_oldest_queued_seconds",
            "How long the oldest job still queued has waited.",
            labels=["runner_label"],
        )
        for snap in self.live.snapshot(time.time()):
            queued.add_metric([snap.label], snap.queued)
            running.add_metric([snap.label], snap.running)
            oldest.add_metric([snap.label], snap.oldest_queued_s)
        yield queued
        yield running
        yield oldest
        yield GaugeMetricFamily(
            "multivac_worker_backlog",
            "Failed jobs whose log is still to be read and classified.",
            value=self.backlog(),
        )


class Metrics:
    def __init__(self, live: LiveState, backlog: Callable[[], int]) -> None:
        # a `_created` gauge beside every counter only doubles the page (process-wide:
        # serve is the only user of prometheus-client in its process)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=False)
        registry = self.registry
        self.accepted = Counter(
            "multivac_deliveries_accepted",
            "Webhook deliveries taken (new), by event.",
            ["event"],
            registry=registry,
        )
        self.duplicates = Counter(
            "multivac_deliveries_duplicate",
            "Webhook deliveries seen before (redeliveries), answered 200 and ignored.",
            registry=registry,
        )
        self.ignored = Counter(
            "multivac_deliveries_ignored",
            "Webhook deliveries of events or actions serve does not use.",
            ["event"],
            registry=registry,
        )
        self.rejected = Counter(
            "multivac_deliveries_rejected",
            "Webhook requests refused, by reason.",
            ["reason"],
            registry=registry,
        )
        self.classified = Counter(
            "multivac_jobs_classified", "Failed jobs classified by the worker.", registry=registry
        )
        self.records = Counter(
            "multivac_records_written", "Records handed to the output.", registry=registry
        )
        self.sink_errors = Counter(
            "multivac_output_errors", "Batches of records the output refused.", registry=registry
        )
        self._ignored_names: set[str] = set()
        registry.register(_LiveCollector(live, backlog))

    def ignore(self, event: str) -> None:
        """Count an event or action serve does not use, by name while few names have
        been seen (a sender could otherwise invent any number of them)."""
        name = event[:64]
        if name not in self._ignored_names:
            if len(self._ignored_names) >= MAX_IGNORED_NAMES:
                name = "other"
            else:
                self._ignored_names.add(name)
        self.ignored.labels(name).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
