"""When to try a delivery again: exponential backoff with jitter, at least what Retry-After asks."""

from __future__ import annotations

from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal

Verdict = Literal["ok", "retry", "fail"]

MAX_RETRY_AFTER_MS = 3_600_000  # a Retry-After longer than an hour is capped there
_RETRY_STATUSES = {408, 425, 429}


def classify_http(status: int) -> Verdict:
    """2xx delivered; 408/425/429 and 5xx worth another attempt; any other status will not get better."""
    if 200 <= status < 300:
        return "ok"
    if status in _RETRY_STATUSES or status >= 500:
        return "retry"
    return "fail"


def classify_smtp(code: int) -> Verdict:
    """SMTP reply codes: 2xx accepted, 4xx transient, 5xx permanent."""
    if 200 <= code < 300:
        return "ok"
    return "retry" if 400 <= code < 500 else "fail"


def retry_after_ms(value: str | None, now_epoch_ms: int) -> int | None:
    """A Retry-After header (delta seconds or an HTTP date) as milliseconds from now; None if absent or bad."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return min(int(text) * 1000, MAX_RETRY_AFTER_MS)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, min(int(when.timestamp() * 1000) - now_epoch_ms, MAX_RETRY_AFTER_MS))


def backoff_ms(attempt: int, initial_ms: int, max_ms: int, random_value: float,
               retry_after: int | None = None) -> int:
    """The pause after failed attempt number `attempt` (1-based): `initial_ms · 2^(attempt-1)` capped at `max_ms`,
    jittered into its upper half by `random_value` in [0, 1); never less than `retry_after` (capped at 1 h)."""
    base: int = min(max_ms, initial_ms << min(attempt - 1, 40))
    delay = base // 2 + int(base / 2 * min(max(random_value, 0.0), 1.0))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_MS))
    return delay
