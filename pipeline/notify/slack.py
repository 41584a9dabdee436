"""Slack incoming-webhook payloads: one attachment per alert (severity colour), the mention in the top-level
text for a CRITICAL alert firing, so Slack notifies the channel."""

from __future__ import annotations

from typing import Any

from pipeline.notify.routing import PlannedDelivery
from pipeline.notify.text import colour, headline, status_label, summary, value_line, where, window_line

_SPECIAL = {"@here": "<!here>", "@channel": "<!channel>", "@everyone": "<!everyone>"}


def slack_mention(mention: str) -> str:
    """`@here` → `<!here>`; `@U024BE7LH` → `<@U024BE7LH>`; anything already in `<…>` form as is."""
    text = mention.strip()
    if text in _SPECIAL:
        return _SPECIAL[text]
    if text.startswith("<") and text.endswith(">"):
        return text
    return f"<{text}>" if text.startswith("@") else text


def _attachment(delivery: PlannedDelivery) -> dict[str, Any]:
    alert = delivery.alert
    fields = [
        {"title": "Endpoint", "value": where(alert), "short": True},
        {"title": "Severity", "value": alert.severity, "short": True},
        {"title": "Value", "value": value_line(alert), "short": False},
        {"title": "Window", "value": window_line(alert), "short": False},
    ]
    if alert.actions and delivery.kind == "trigger":
        fields.append({"title": "Actions", "value": " · ".join(alert.actions), "short": False})
    if alert.runbook_url:
        fields.append({"title": "Runbook", "value": f"<{alert.runbook_url}|{alert.runbook_url}>", "short": False})
    attachment: dict[str, Any] = {
        "color": colour(alert, delivery.kind),
        "title": f"[{status_label(alert, delivery.kind)}] {alert.rule}",
        "text": summary(alert),
        "fields": fields,
        "footer": f"tailwatch · {delivery.key}",
        "fallback": headline(alert, delivery.kind),
    }
    if alert.runbook_url:
        attachment["title_link"] = alert.runbook_url
    return attachment


def slack_payload(deliveries: list[PlannedDelivery], channel: str | None = None,
                  mention: str | None = None) -> dict[str, Any]:
    """One webhook message for one or more alerts (a group)."""
    if len(deliveries) == 1:
        text = headline(deliveries[0].alert, deliveries[0].kind)
    else:
        firing = sum(1 for d in deliveries if d.kind == "trigger")
        text = f"{len(deliveries)} alerts: {firing} firing, {len(deliveries) - firing} resolved"
    critical = any(d.kind == "trigger" and d.alert.severity == "CRITICAL" for d in deliveries)
    if mention and critical:
        text = f"{slack_mention(mention)} {text}"
    payload: dict[str, Any] = {"text": text, "attachments": [_attachment(d) for d in deliveries]}
    if channel:
        payload["channel"] = channel
    return payload
