"""E-mail content for one alert or a group: subject, plain text and HTML, and the header values the sender
puts on every message (`Date`, `Message-ID`; the sender adds From and To).

Header values never hold a line break: logged text is made visible (`\\r\\n` as the four characters) and cut
in the middle to `SUBJECT_MAX`, so building a message cannot fail on what the logs said. The `Message-ID` is
derived from the delivery keys, so a message sent again after a crash has the same one (mail clients and
archives that de-duplicate by Message-ID show it once).
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime

from pipeline.notify.routing import PlannedDelivery
from pipeline.notify.text import (
    colour,
    headline,
    shorten_middle,
    status_label,
    summary,
    value_line,
    visible,
    where,
    window_line,
)

SUBJECT_MAX = 250  # characters; RFC 5322 folds longer lines, but a subject is read at a glance
DEFAULT_DOMAIN = "tailwatch.invalid"


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str
    delivery_keys: list[str]


def header_text(value: str, limit: int = SUBJECT_MAX) -> str:
    """A header value from any text: one line (control characters escaped), at most `limit` characters."""
    return shorten_middle(visible(value).strip(), limit)


def subject_header(subject: str) -> str:
    """The Subject as it goes on the wire: ASCII as is; otherwise whole as RFC 2047 encoded words, folded here
    (Python's own folder puts two spaces between an ASCII word and a following encoded word)."""
    if subject.isascii():
        return subject
    return Header(subject, "utf-8", header_name="Subject").encode(linesep="\n")


def mail_date(epoch_ms: int) -> str:
    """The `Date` header (RFC 5322) for an instant in epoch milliseconds, in UTC."""
    return format_datetime(datetime.fromtimestamp(epoch_ms / 1000, UTC))


def message_id(delivery_keys: list[str], sender: str) -> str:
    """`<hash of the delivery keys@the sender's domain>`: the same message always gets the same id."""
    domain = sender.rpartition("@")[2].strip().strip(">").strip() if "@" in sender else ""
    if not domain or any(not (c.isalnum() or c in "-.") for c in domain):
        domain = DEFAULT_DOMAIN
    digest = hashlib.sha256("\n".join(delivery_keys).encode()).hexdigest()[:32]
    return f"<{digest}.tailwatch@{domain}>"


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
    return [(name, visible(value)) for name, value in rows]


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
    return EmailContent(subject=header_text(subject), text="\n\n---\n\n".join(text_parts) + "\n",
                        html="<html><body>" + "<hr>".join(html_parts) + "</body></html>",
                        delivery_keys=[d.key for d in deliveries])
