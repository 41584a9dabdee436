"""What every channel's message says about an alert: status, where, value vs threshold, window, colour.

Text that comes from logs (labels, annotations) is made visible here, once, for every channel: control
characters (CR, LF, tab, NUL, Unicode line separators) become escapes such as `\\r`, so no message, header or
line can be split by a logged value. Each channel then escapes for its own format (Slack, HTML, headers).
"""

from __future__ import annotations

import re

from schemas.alerts import AlertEvent
from schemas.deliveries import DeliveryKind

SEVERITY_COLOURS = {"CRITICAL": "#A32037", "HIGH": "#E8912D", "MEDIUM": "#DAA038", "LOW": "#3AA3E3",
                    "INFO": "#3AA3E3"}
RESOLVED_COLOUR = "#2EB67D"
_CHANGE_LABELS = {"firing": "FIRING", "escalated": "ESCALATED", "deescalated": "DE-ESCALATED",
                  "repeat": "STILL FIRING", "resolved": "RESOLVED"}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}
ELLIPSIS = "…"
HEADLINE_WHERE_MAX = 200  # the endpoint in a headline (Slack text, e-mail subject) is cut in the middle


def visible(text: str) -> str:
    """`text` on one line: each control character as an escape (`\\r`, `\\n`, `\\t`, `\\x07`, `\\u2028`)."""
    def escape(match: re.Match[str]) -> str:
        char = match.group()
        return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
    return _CONTROL.sub(escape, text)


def shorten_middle(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and end around an ellipsis (both ends say most)."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    head = limit // 2
    tail = limit - 1 - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


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
    return visible(" ".join(part for part in (labels.get("service"), labels.get("endpoint")) if part) or "(all)")


def number(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def summary(alert: AlertEvent) -> str:
    return visible(alert.annotations.get("summary") or f"{alert.rule} on {where(alert)}: {alert.condition}")


def value_line(alert: AlertEvent) -> str:
    return f"{number(alert.value)} vs threshold {number(alert.threshold)} ({visible(alert.condition)})"


def window_line(alert: AlertEvent) -> str:
    start, end = alert.provenance.window_start, alert.provenance.window_end
    return f"{start} – {end} ({alert.provenance.sample_count} requests)"


def headline(alert: AlertEvent, kind: DeliveryKind) -> str:
    """One line: status, severity, rule and where (cut in the middle beyond HEADLINE_WHERE_MAX characters)."""
    return (f"[{status_label(alert, kind)}] {alert.severity} {visible(alert.rule)}: "
            f"{shorten_middle(where(alert), HEADLINE_WHERE_MAX)}")
