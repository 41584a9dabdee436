"""Slack incoming-webhook payloads: one attachment per alert (severity colour), the mention in the top-level
text for a CRITICAL alert firing, so Slack notifies the channel.

Slack reads `&`, `<` and `>` as control characters in every text (`<!channel>` pings a channel, `<url|label>`
is a link), so every text taken from logs, rules or labels goes through `slack_escape` (Slack's formatting
rules: only those three become `&amp;`, `&lt;`, `&gt;`). The only control sequences in a payload are the ones
built here: the configured mention and the runbook link (`slack_link`). Markdown characters (`*`, `_`, `~`,
backticks) stay as they are: Slack has no escape for them, and they can only change how text looks.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.notify.routing import PlannedDelivery
from pipeline.notify.text import colour, headline, status_label, summary, value_line, visible, where, window_line

_SPECIAL = {"@here": "<!here>", "@channel": "<!channel>", "@everyone": "<!everyone>"}
# In a link's URL: percent-encode what could end the URL or the link (`|`, `>`, `<`), spaces, `"` and non-ASCII; keep
# the characters a URL is made of (RFC 3986 reserved and unreserved, and `%` of existing escapes).
_URL_SAFE = frozenset("/:?#[]@!$&'()*+,;=-._~%")
_HTTP_URL = re.compile(r"https?://[^/?#\s]+", re.IGNORECASE)


def _percent_encode(url: str) -> str:
    """Every character outside ASCII letters, digits and `_URL_SAFE` as %XX of its UTF-8 bytes."""
    return "".join(char if char.isascii() and (char.isalnum() or char in _URL_SAFE)
                   else "".join(f"%{byte:02X}" for byte in char.encode()) for char in url)


def slack_escape(text: str) -> str:
    """Text shown as is: `&`, `<`, `>` as the entities Slack decodes."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_mention(mention: str) -> str:
    """`@here` → `<!here>`; `@U024BE7LH` → `<@U024BE7LH>`; anything already in `<…>` form as is (configuration,
    not log content: the operator chose it)."""
    text = mention.strip()
    if text in _SPECIAL:
        return _SPECIAL[text]
    if text.startswith("<") and text.endswith(">"):
        return text
    return f"<{text}>" if text.startswith("@") else slack_escape(text)


def safe_url(url: str) -> str | None:
    """An http(s) URL with nothing that could end a Slack link in it, or None (another scheme, no host)."""
    if not _HTTP_URL.match(url.strip()):
        return None
    return slack_escape(_percent_encode(visible(url.strip())))


def slack_link(url: str, label: str) -> str:
    """`<url|label>` with the URL percent-encoded and the label escaped; plain escaped text if the URL is not
    http(s)."""
    target = safe_url(url)
    if target is None:
        return slack_escape(visible(url))
    return f"<{target}|{slack_escape(visible(label))}>"


def _attachment(delivery: PlannedDelivery) -> dict[str, Any]:
    alert = delivery.alert
    fields = [
        {"title": "Endpoint", "value": slack_escape(where(alert)), "short": True},
        {"title": "Severity", "value": slack_escape(alert.severity), "short": True},
        {"title": "Value", "value": slack_escape(value_line(alert)), "short": False},
        {"title": "Window", "value": slack_escape(window_line(alert)), "short": False},
    ]
    if alert.actions and delivery.kind == "trigger":
        fields.append({"title": "Actions", "value": slack_escape(visible(" · ".join(alert.actions))),
                       "short": False})
    if alert.runbook_url:
        fields.append({"title": "Runbook", "value": slack_link(alert.runbook_url, alert.runbook_url),
                       "short": False})
    attachment: dict[str, Any] = {
        "color": colour(alert, delivery.kind),
        "title": slack_escape(f"[{status_label(alert, delivery.kind)}] {visible(alert.rule)}"),
        "text": slack_escape(summary(alert)),
        "fields": fields,
        "footer": slack_escape(f"tailwatch · {visible(delivery.key)}"),
        "fallback": slack_escape(headline(alert, delivery.kind)),
    }
    if alert.runbook_url and safe_url(alert.runbook_url) is not None:  # a URL field, not text: no entities
        attachment["title_link"] = _percent_encode(visible(alert.runbook_url.strip()))
    return attachment


def slack_payload(deliveries: list[PlannedDelivery], channel: str | None = None,
                  mention: str | None = None) -> dict[str, Any]:
    """One webhook message for one or more alerts (a group)."""
    if len(deliveries) == 1:
        text = slack_escape(headline(deliveries[0].alert, deliveries[0].kind))
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
