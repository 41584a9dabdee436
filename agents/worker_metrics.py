"""Prometheus metrics of a tailwatch process (`GET /metrics` on the worker's web port).

`TailwatchMetrics` owns one registry per process (not the global one, so several workers can live in one test
process). The hot path only touches it once per batch: `on_batch` (processing time histogram), `on_alerts`
(transitions by rule and state) and `on_panes_closed` (the records of the folded endpoints `<unmatched>` and
`<overflow>`, per closed pane). Everything the worker already counts — records in, late records, snapshots,
consumer lag, panes held, and the service stage's panes closed, late and duplicate endpoint panes and partitions
heard — is read at scrape time by `WorkerCollector`, so it costs nothing per record.

For other components (the notifier): `metrics.notification(channel, ok)` counts a delivery attempt and, when
it failed, a failure; `metrics.registry` takes any further `prometheus_client` metric or collector.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.endpoint_catalog import FOLDED_ENDPOINTS

if TYPE_CHECKING:
    from agents.stream_worker import MetricsWorker
    from pipeline.pane_store import ClosedPaneEvent

CONTENT_TYPE = "text/plain; version=0.0.4"  # aiohttp adds no charset here: the text is ASCII
# Seconds to process one message (a batch of up to ~500 records): sub-millisecond heartbeats to slow batches.
BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class TailwatchMetrics:
    """The metrics registry of one tailwatch process, with the counters the hot path and other parts update."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.batch_seconds = Histogram(
            "tailwatch_batch_processing_seconds", "Time to process one logs-topic message (a batch of records)",
            buckets=BATCH_BUCKETS, registry=self.registry)
        self.alert_transitions = Counter(
            "tailwatch_alert_transitions", "Alert transitions published to the alerts topic",
            ["rule", "state"], registry=self.registry)
        self.dead_letters = Counter(
            "tailwatch_dead_letters", "Rejected input pieces seen on the dead-letter topic, by kind",
            ["kind"], registry=self.registry)
        self.notification_attempts = Counter(
            "tailwatch_notification_attempts", "Notification delivery attempts, by channel",
            ["channel"], registry=self.registry)
        self.folded_records = Counter(
            "tailwatch_folded_records", "Records in closed panes of the endpoints ingest folds scanned paths and "
            "keys past the per-service cap into (<unmatched>, <overflow>), by service and endpoint",
            ["service", "endpoint"], registry=self.registry)
        self.notification_failures = Counter(
            "tailwatch_notification_failures", "Notification delivery attempts that failed, by channel",
            ["channel"], registry=self.registry)
        self.last_message_ms: int | None = None  # wall clock, for /health's last_record check

    def on_batch(self, seconds: float) -> None:
        self.batch_seconds.observe(seconds)
        self.last_message_ms = time.time_ns() // 1_000_000

    def on_alerts(self, alerts: Iterable[dict[str, Any]]) -> None:
        for alert in alerts:
            self.alert_transitions.labels(alert["rule"], alert["state"]).inc()

    def on_panes_closed(self, panes: Iterable[ClosedPaneEvent]) -> None:
        """Per closed pane (not per record): count the records of the folded endpoints."""
        for pane in panes:
            if pane.endpoint in FOLDED_ENDPOINTS and pane.pane.total:
                self.folded_records.labels(pane.service, pane.endpoint).inc(pane.pane.total)

    def on_dead_letter(self, kind: str) -> None:
        self.dead_letters.labels(kind).inc()

    def notification(self, channel: str, ok: bool) -> None:
        """One delivery attempt to `channel` (for the notifier)."""
        self.notification_attempts.labels(channel).inc()
        if not ok:
            self.notification_failures.labels(channel).inc()

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


class WorkerCollector(Collector):
    """What a metrics worker already counts, read when Prometheus scrapes."""

    def __init__(self, worker: MetricsWorker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        worker = self.worker
        yield CounterMetricFamily("tailwatch_records_in", "Records read from the logs topic",
                                  value=worker.records_in)
        yield CounterMetricFamily("tailwatch_late_records", "Records dropped as late (their pane had closed)",
                                  value=worker.late)
        yield CounterMetricFamily("tailwatch_deleted_unread_messages", "Logs-topic messages the topic's retention "
                                  "deleted before they were processed (skipped)", value=worker.deleted_unread)
        yield CounterMetricFamily("tailwatch_snapshots", "Pane snapshots sent to the metrics topic",
                                  value=worker.snapshots_sent)
        dashboard = worker.dashboard
        yield GaugeMetricFamily("tailwatch_dashboard_panes_held", "Endpoint and service panes /dashboard holds (it "
                                "reads the topics once the page was first requested)",
                                value=0 if dashboard is None else len(dashboard.panes.points)
                                + len(dashboard.services.points))
        yield GaugeMetricFamily("tailwatch_dashboard_reading", "1 once /dashboard reads the topics (from the page's "
                                "first request on)", value=int(dashboard is not None and dashboard.reading))
        lag = GaugeMetricFamily("tailwatch_consumer_lag", "Messages of the logs topic not processed yet",
                                labels=["partition"])
        for partition, value in sorted(consumer_lag(worker).items()):
            lag.add_metric([str(partition)], value)
        yield lag
        panes = GaugeMetricFamily("tailwatch_panes_held", "Panes held in memory (open, and closed for windows)",
                                  labels=["state"])
        states = list(worker.partitions.values())
        panes.add_metric(["open"], sum(len(state.operator.store.open) for state in states))
        panes.add_metric(["closed"], sum(len(history) for state in states
                                         for history in state.operator.store.history.values()))
        yield panes
        yield GaugeMetricFamily("tailwatch_checkpoint_bytes", "Size of the partitions' last checkpoints (open panes, "
                                "clocks, producers, alert states)",
                                value=sum(state.checkpoint_bytes for state in states))
        yield GaugeMetricFamily("tailwatch_producers_held", "Running logs-topic producers held in the partitions' "
                                "watermarks", value=sum(len(state.operator.watermark.producers) for state in states))
        yield GaugeMetricFamily("tailwatch_alert_states", "Alert states held (pending or firing rule × endpoint)",
                                value=sum(len(state.operator.engine.states) for state in states
                                          if state.operator.engine is not None))
        if worker.telemetry.last_message_ms is not None:
            yield GaugeMetricFamily("tailwatch_last_message_timestamp_seconds",
                                    "Wall time the last logs-topic message was processed",
                                    value=worker.telemetry.last_message_ms / 1000)
        yield GaugeMetricFamily("tailwatch_partitions_assigned", "Logs-topic partitions assigned to this worker",
                                value=len(assigned_partitions(worker)))
        yield GaugeMetricFamily("tailwatch_silences", "Silences held (active, pending and expired records)",
                                value=len(worker.silence_feed.silences))
        yield CounterMetricFamily("tailwatch_invalid_silence_records",
                                  "Silences-topic records skipped as invalid (e.g. a regex RE2 does not accept)",
                                  value=worker.silence_feed.invalid_records)
        yield from service_stage_metrics(worker)


def service_stage_metrics(worker: MetricsWorker) -> Iterator[Metric]:
    """The service stage's counters (agents/service_worker.py), read at scrape time."""
    stage = worker.service
    yield CounterMetricFamily("tailwatch_service_values_in", "Metrics-topic values the service stage applied "
                              "(endpoint panes, held alerts, progress)", value=stage.values_in)
    yield CounterMetricFamily("tailwatch_service_values_read_back", "Of those, values this worker's logs stage sent, "
                              "taken as it made them instead of decoded", value=stage.values_read_back)
    yield CounterMetricFamily("tailwatch_service_panes_closed", "Service panes closed and sent to the service "
                              "metrics topic", value=stage.panes_closed)
    yield CounterMetricFamily("tailwatch_service_late_endpoint_panes", "Endpoint panes that reached the service "
                              "stage after their service pane had closed (counted, not merged)",
                              value=stage.late_endpoint_panes)
    yield CounterMetricFamily("tailwatch_service_duplicate_endpoint_panes", "Endpoint panes the service stage had "
                              "merged already (sent again after a logs-stage restart), skipped",
                              value=stage.duplicates)
    yield CounterMetricFamily("tailwatch_service_invalid_values", "Metrics-topic values the service stage "
                              "dead-lettered as invalid", value=stage.invalid)
    yield CounterMetricFamily("tailwatch_service_alerts", "Service alert transitions and released held alerts "
                              "published by the service stage", value=stage.alerts_sent)
    heard = GaugeMetricFamily("tailwatch_service_partitions_heard", "Logs partitions a metrics partition's service "
                              "stage has heard progress from (service panes close only once it is all of them)",
                              labels=["partition"])
    states = list(stage.partitions.items())
    for partition, state in sorted(states):
        heard.add_metric([str(partition)], state.operator.partitions_heard)
    yield heard
    lag = GaugeMetricFamily("tailwatch_service_consumer_lag", "Messages of the metrics topic the service stage has "
                            "not processed yet", labels=["partition"])
    for partition, behind in sorted(stage_lag(worker.app, stage.topic, stage.partitions).items()):
        lag.add_metric([str(partition)], behind)
    yield lag
    yield GaugeMetricFamily("tailwatch_service_panes_held", "Service panes held in memory (open, and closed for "
                            "windows)", value=sum(state.operator.store.panes_held() for _p, state in states))
    yield GaugeMetricFamily("tailwatch_service_checkpoint_bytes", "Size of the service stage's last checkpoints",
                            value=sum(state.checkpoint_bytes for _p, state in states))


def assigned_partitions(worker: MetricsWorker) -> list[int]:
    return _assigned(worker.app, worker.settings.kafka.logs_topic)


def _assigned(app: Any, topic: str) -> list[int]:
    try:
        assignment = app.consumer.assignment()
    except Exception:  # no consumer yet (starting) or gone (stopping): nothing assigned
        return []
    return sorted(tp.partition for tp in assignment if tp.topic == topic)


def consumer_lag(worker: MetricsWorker) -> dict[int, int]:
    """Per assigned logs partition: the broker's high watermark (from the last fetch) minus the next offset
    the worker has to apply. Partitions it has not read a message from since it got them are left out (their
    next offset is the committed one, which the worker does not track)."""
    return stage_lag(worker.app, worker.settings.kafka.logs_topic, worker.partitions)


def stage_lag(app: Any, topic: str, states: Mapping[int, Any]) -> dict[int, int]:
    """`consumer_lag` for one stage: its input `topic` and its partitions' states (each with an `operator`)."""
    from faust.types import TP  # noqa: PLC0415 - Faust is slow to import; the worker has it loaded

    lag: dict[int, int] = {}
    for partition in _assigned(app, topic):
        state = states.get(partition)
        if state is None:
            continue
        try:
            highwater = app.consumer.highwater(TP(topic, partition))
        except Exception:  # noqa: S112 - not fetched yet after an assignment
            continue
        if highwater is None or highwater < 0:
            continue
        lag[partition] = max(0, highwater - (state.operator.applied_offset + 1))
    return lag
