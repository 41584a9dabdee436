"""PagerDuty Events API v2 events: trigger with `dedup_key` = the fingerprint, resolve with the same key."""

from __future__ import annotations

from typing import Any

from pipeline.notify.routing import PlannedDelivery
from pipeline.notify.text import summary, where, window_line

SEVERITIES = {"CRITICAL": "critical", "HIGH": "error", "MEDIUM": "warning"}
SUMMARY_MAX = 1024


def pd_severity(severity: str) -> str:
    return SEVERITIES.get(severity, "info")


def pagerduty_event(delivery: PlannedDelivery, routing_key: str) -> dict[str, Any]:
    alert = delivery.alert
    if delivery.kind == "resolve":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": alert.fingerprint}
    labels = alert.labels
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.fingerprint,
        "client": "tailwatch",
        "payload": {
            "summary": f"[{alert.severity}] {summary(alert)}"[:SUMMARY_MAX],
            "source": labels.get("service") or where(alert),
            "severity": pd_severity(alert.severity),
            "timestamp": alert.starts_at,
            "component": labels.get("endpoint") or where(alert),
            "group": labels.get("service") or alert.rule,
            "class": alert.rule,
            "custom_details": {
                "rule": alert.rule,
                "change": alert.change,
                "condition": alert.condition,
                "value": alert.value,
                "threshold": alert.threshold,
                "window": window_line(alert),
                "runbook": alert.runbook_url,
                "actions": list(alert.actions),
                "labels": dict(alert.labels),
            },
        },
    }
    if alert.runbook_url:
        event["links"] = [{"href": alert.runbook_url, "text": "Runbook"}]
    return event
