"""PagerDuty Events API v2 events: trigger with `dedup_key` = the fingerprint, resolve with the same key.

The Events API v2 takes a `summary` of at most 1024 characters (longer ones are refused or cut by PagerDuty,
which can cut off what the page is about) and a `dedup_key` of at most 255. A summary that does not fit is
rebuilt from what a responder needs — severity, rule, endpoint (cut in the middle if needed) and value — and
`source`, `component`, `group` and `class` are kept to 255 characters the same way. The full labels are in
`custom_details`.
"""

from __future__ import annotations

from typing import Any

from pipeline.notify.routing import PlannedDelivery
from pipeline.notify.text import shorten_middle, summary, value_line, visible, where, window_line
from schemas.alerts import AlertEvent

SEVERITIES = {"CRITICAL": "critical", "HIGH": "error", "MEDIUM": "warning"}
SUMMARY_MAX = 1024
FIELD_MAX = 255  # source, component, group, class: short identifiers in PagerDuty's UI


def pd_severity(severity: str) -> str:
    return SEVERITIES.get(severity, "info")


def pd_summary(alert: AlertEvent) -> str:
    """`[SEVERITY] summary` if it fits in 1024 characters; else `[SEVERITY] rule on endpoint: value`, the
    endpoint cut in the middle and the rule at the end cut last, so the value and both ends of the endpoint stay."""
    full = f"[{alert.severity}] {summary(alert)}"
    if len(full) <= SUMMARY_MAX:
        return full
    rule = shorten_middle(visible(alert.rule), 200)
    value = shorten_middle(value_line(alert), 300)
    fixed = f"[{alert.severity}] {rule} on : {value}"
    return f"[{alert.severity}] {rule} on {shorten_middle(where(alert), SUMMARY_MAX - len(fixed))}: {value}"


def _field(text: str) -> str:
    return shorten_middle(visible(text), FIELD_MAX)


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
            "summary": pd_summary(alert),
            "source": _field(labels.get("service") or where(alert)),
            "severity": pd_severity(alert.severity),
            "timestamp": alert.starts_at,
            "component": _field(labels.get("endpoint") or where(alert)),
            "group": _field(labels.get("service") or alert.rule),
            "class": _field(alert.rule),
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
