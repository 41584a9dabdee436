"""Prometheus metrics of `tailwatch ingest --listen` (`GET /metrics` on the listener): requests by route and
status, events and records published, bodies rejected by kind, duplicates skipped, and the time from a request's
records being parsed to Kafka acknowledging all of them. One registry per listener (as `worker_metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from agents.worker_metrics import CONTENT_TYPE

ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class PushMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter("tailwatch_push_requests", "Push requests answered, by route and HTTP status",
                                ["route", "status"], registry=self.registry)
        self.events = Counter("tailwatch_push_events", "Events received in accepted push requests, by route",
                              ["route"], registry=self.registry)
        self.records = Counter("tailwatch_push_records", "Records published from push requests, by route",
                               ["route"], registry=self.registry)
        self.rejected_events = Counter("tailwatch_push_rejected_events",
                                       "Events of accepted requests dead-lettered, by route", ["route"],
                                       registry=self.registry)
        self.rejected_bodies = Counter("tailwatch_push_rejected_bodies",
                                       "Request bodies refused (400/413/415), by route and kind", ["route", "kind"],
                                       registry=self.registry)
        self.duplicates = Counter("tailwatch_push_duplicate_requests",
                                  "Requests whose body was already published (answered 200, not published again)",
                                  registry=self.registry)
        self.ack_seconds = Histogram("tailwatch_push_kafka_ack_seconds",
                                     "Time from sending a request's records to Kafka acknowledging all of them",
                                     buckets=ACK_BUCKETS, registry=self.registry)

    def request(self, route: str, status: int) -> None:
        self.requests.labels(route, str(status)).inc()

    def published(self, route: str, events: int, records: int, rejected: int, ack_seconds: float) -> None:
        self.events.labels(route).inc(events)
        self.records.labels(route).inc(records)
        self.rejected_events.labels(route).inc(rejected)
        self.ack_seconds.observe(ack_seconds)

    def rejected(self, route: str, kind: str) -> None:
        self.rejected_bodies.labels(route, kind).inc()

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE
