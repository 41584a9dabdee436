"""What every channel's message says about an alert: status, where, value vs threshold, window, colour."""

from __future__ import annotations

from schemas.alerts import AlertEvent
from schemas.deliveries import DeliveryKind

SEVERITY_COLOURS = {"CRITICAL": "#A32037", "HIGH": "#E8912D", "MEDIUM": "#DAA038", "LOW": "#3AA3E3",
                    "INFO": "#3AA3E3"}
RESOLVED_COLOUR = "#2EB67D"
_CHANGE_LABELS = {"firing": "FIRING", "escalated": "ESCALATED", "deescalated": "DE-ESCALATED",
                  "repeat": "STILL FIRING", "resolved": "RESOLVED"}


def status_label(alert: AlertEvent, kind: DeliveryKind) -> str:
    if kind == "resolve" and alert.state == "firing":  # the alert moved to other channels (a tier change)
        return f"{_CHANGE_LABELS[alert.change]} to {alert.severity} (no longer routed here)"
    return _CHANGE_LABELS[alert.change]


def colour(alert: AlertEvent, kind: DeliveryKind) -> str:
    if kind == "resolve":
        return RESOLVED_COLOUR
    return SEVERITY_COLOURS.get(alert.severity, SEVERITY_COLOURS["INFO"])


def where(alert: AlertEvent) -> str:
    labels = alert.labels
    return " ".join(part for part in (labels.get("service"), labels.get("endpoint")) if part) or "(all)"


def number(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def summary(alert: AlertEvent) -> str:
    return alert.annotations.get("summary") or f"{alert.rule} on {where(alert)}: {alert.condition}"


def value_line(alert: AlertEvent) -> str:
    return f"{number(alert.value)} vs threshold {number(alert.threshold)} ({alert.condition})"


def window_line(alert: AlertEvent) -> str:
    start, end = alert.provenance.window_start, alert.provenance.window_end
    return f"{start} – {end} ({alert.provenance.sample_count} requests)"


def headline(alert: AlertEvent, kind: DeliveryKind) -> str:
    return f"[{status_label(alert, kind)}] {alert.severity} {alert.rule}: {where(alert)}"
