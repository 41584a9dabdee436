"""Alert events for notifier tests, shaped as the stream worker publishes them (schemas/alerts.py)."""

from __future__ import annotations

from typing import Any

from schemas.alerts import AlertEvent


def alert_event(rule: str = "factory-high-error-rate", change: str = "firing", severity: str = "CRITICAL",
                endpoint: str = "/api/public/factory/templates", service: str = "gateway",
                channels: list[str] | None = None, window_end: str = "2026-03-01T10:10:00Z",
                inhibited_by: list[str] | None = None, value: float = 0.125, threshold: float = 0.05,
                fingerprint: str | None = None) -> dict[str, Any]:
    state = "resolved" if change == "resolved" else "firing"
    event = {
        "v": 1, "rule": rule, "state": state, "change": change, "severity": severity,
        "labels": {"service": service, "endpoint": endpoint, "rule": rule},
        "annotations": {"summary": f"{service} {endpoint}: error rate {value:.1%} > 5% for 10 minutes"},
        "fingerprint": fingerprint or f"fp-{rule}-{service}-{endpoint}".replace("/", "_"),
        "active_since": "2026-03-01T10:00:00Z", "starts_at": "2026-03-01T10:10:00Z",
        "ends_at": window_end if state == "resolved" else None,
        "value": value, "threshold": threshold, "condition": "error_rate > 0.05",
        "channels": channels if channels is not None else ["pagerduty", "slack-critical"],
        "actions": ["Create incident", "Notify engineering lead", "Consider rollback"],
        "runbook_url": "https://runbooks.example.com/factory/high-error-rate",
        "inhibited_by": inhibited_by or [],
        "provenance": {"window_start": "2026-03-01T10:09:00Z", "window_end": window_end, "sample_count": 200,
                       "rules_hash": "0" * 64},
    }
    AlertEvent.model_validate(event)
    return event


def alert(**kwargs: Any) -> AlertEvent:
    return AlertEvent.model_validate(alert_event(**kwargs))
