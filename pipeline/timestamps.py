"""Event-time conversions. Pure: integer epoch milliseconds, UTC."""

from __future__ import annotations

from datetime import UTC, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_THRESHOLD = 100_000_000_000  # below this a number is taken as epoch seconds (year 5138 in ms, 1973 in s)


def iso_to_ms(text: str) -> int:
    """Parse an ISO 8601 timestamp to epoch ms; a time with no offset is UTC. Raises ValueError when unparsable."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def number_to_ms(value: float) -> int:
    """An epoch number to ms: values below 1e11 are seconds, others milliseconds."""
    return int(value * 1000) if abs(value) < _MS_THRESHOLD else int(value)


def ms_to_iso(ms: int) -> str:
    """Epoch ms to ISO 8601 UTC with millisecond precision and a `Z` suffix."""
    seconds, millis = divmod(ms, 1000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"
