"""A worker's health verdict, as the spec's health check shapes it: `{"status", "timestamp", "checks"}`.

Pure: the agents gather the facts (broker answered, agents running, lag per partition, when the last message
arrived, which channels are configured) and pass them in with `now_ms`; this decides each check and the status.
Every check must pass for `healthy` (HTTP 200); any failing one makes the worker `degraded` (HTTP 503).
`details` carries the numbers behind each check, so a 503 says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.timestamps import ms_to_iso

CHECKS = ("broker", "agents", "consumer_lag", "last_record", "channels")


@dataclass(frozen=True)
class HealthLimits:
    max_lag_messages: int = 1_000  # summed over the worker's partitions (one message = one batch of records)
    max_record_age_ms: int = 15 * 60_000  # 0: no bound


@dataclass(frozen=True)
class HealthFacts:
    broker_ok: bool
    broker_error: str | None = None
    agents_running: bool = False
    lag_by_partition: dict[int, int] = field(default_factory=dict)
    started_ms: int = 0  # when the worker started: a worker that got nothing yet is judged from then
    last_message_ms: int | None = None  # wall time of the last message read from the logs topic
    channels_configured: frozenset[str] | None = None  # None: no channel configuration found
    channels_required: frozenset[str] = frozenset()  # the channels the loaded rules route to


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    body: dict[str, Any]

    @property
    def http_status(self) -> int:
        return 200 if self.healthy else 503


def evaluate(facts: HealthFacts, limits: HealthLimits, now_ms: int) -> HealthReport:
    lag = sum(max(0, value) for value in facts.lag_by_partition.values())
    since = facts.last_message_ms if facts.last_message_ms is not None else facts.started_ms
    age_ms = max(0, now_ms - since)
    configured = facts.channels_configured
    missing = sorted(facts.channels_required - configured) if configured is not None else None
    checks = {
        "broker": facts.broker_ok,
        "agents": facts.agents_running,
        "consumer_lag": lag <= limits.max_lag_messages,
        "last_record": limits.max_record_age_ms <= 0 or age_ms <= limits.max_record_age_ms,
        "channels": configured is not None and bool(configured) and not missing,
    }
    details: dict[str, Any] = {
        "broker": {"error": facts.broker_error} if facts.broker_error else {},
        "consumer_lag": {"messages": lag, "bound": limits.max_lag_messages,
                         "partitions": {str(p): v for p, v in sorted(facts.lag_by_partition.items())}},
        "last_record": {"age_s": round(age_ms / 1000, 3), "bound_s": limits.max_record_age_ms / 1000,
                        "seen": facts.last_message_ms is not None},
        "channels": {"configured": sorted(configured) if configured is not None else None,
                     "missing": missing if missing is not None else sorted(facts.channels_required)},
    }
    healthy = all(checks.values())
    body = {"status": "healthy" if healthy else "degraded", "timestamp": ms_to_iso(now_ms), "checks": checks,
            "details": details}
    return HealthReport(healthy, body)


@dataclass(frozen=True)
class ListenerFacts:
    """`tailwatch ingest --listen`: whether Kafka acknowledged the last publish, and the request queue."""

    kafka_error: str | None  # the last publish's failure; None once one succeeds again
    waiting: int  # requests waiting for a slot
    max_waiting: int
    last_request_ms: int | None  # wall time of the last request published


def evaluate_listener(facts: ListenerFacts, now_ms: int) -> HealthReport:
    """Healthy (200) while Kafka acknowledges and the wait queue has room; else degraded (503), so a load
    balancer sends the senders' retries to another replica."""
    checks = {"kafka": facts.kafka_error is None, "queue": facts.waiting < facts.max_waiting}
    details: dict[str, Any] = {
        "kafka": {"error": facts.kafka_error} if facts.kafka_error else {},
        "queue": {"waiting": facts.waiting, "bound": facts.max_waiting},
        "last_request": {"age_s": None if facts.last_request_ms is None
                         else round(max(0, now_ms - facts.last_request_ms) / 1000, 3)},
    }
    healthy = all(checks.values())
    body = {"status": "healthy" if healthy else "degraded", "timestamp": ms_to_iso(now_ms), "checks": checks,
            "details": details}
    return HealthReport(healthy, body)
