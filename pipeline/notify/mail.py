"""E-mail content for one alert or a group: subject, plain text and HTML (the sender adds From and To)."""

from __future__ import annotations

import html
from dataclasses import dataclass

from pipeline.notify.routing import PlannedDelivery
from pipeline.notify.text import colour, headline, status_label, summary, value_line, where, window_line


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str
    delivery_keys: list[str]


def _rows(delivery: PlannedDelivery) -> list[tuple[str, str]]:
    alert = delivery.alert
    rows = [("Status", status_label(alert, delivery.kind)), ("Severity", alert.severity), ("Rule", alert.rule),
            ("Endpoint", where(alert)), ("Value", value_line(alert)), ("Window", window_line(alert)),
            ("Since", alert.active_since)]
    if alert.ends_at:
        rows.append(("Ended", alert.ends_at))
    if alert.actions and delivery.kind == "trigger":
        rows.append(("Actions", "; ".join(alert.actions)))
    if alert.runbook_url:
        rows.append(("Runbook", alert.runbook_url))
    rows.append(("Delivery", delivery.key))
    return rows


def email_content(deliveries: list[PlannedDelivery]) -> EmailContent:
    if len(deliveries) == 1:
        subject = f"[tailwatch] {headline(deliveries[0].alert, deliveries[0].kind)}"
    else:
        firing = sum(1 for d in deliveries if d.kind == "trigger")
        subject = f"[tailwatch] {len(deliveries)} alerts: {firing} firing, {len(deliveries) - firing} resolved"
    text_parts, html_parts = [], []
    for delivery in deliveries:
        rows = _rows(delivery)
        text_parts.append("\n".join([summary(delivery.alert), "", *(f"{k}: {v}" for k, v in rows)]))
        cells = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                        for k, v in rows)
        html_parts.append(
            f"<div style='border-left:6px solid {colour(delivery.alert, delivery.kind)};padding-left:8px'>"
            f"<h3>{html.escape(summary(delivery.alert))}</h3><table>{cells}</table></div>")
    return EmailContent(subject=subject, text="\n\n---\n\n".join(text_parts) + "\n",
                        html="<html><body>" + "<hr>".join(html_parts) + "</body></html>",
                        delivery_keys=[d.key for d in deliveries])
