"""Event-time conversions. Pure: integer epoch milliseconds, UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_THRESHOLD = 100_000_000_000  # below this a number is taken as epoch seconds (year 5138 in ms, 1973 in s)
MIN_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z: the range ms_to_iso can print
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


_DAY_MS: dict[str, int] = {}  # "YYYY-MM-DD" -> epoch ms of its midnight (bounded below)
_SECOND_MS: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> epoch ms of that second (bounded below)
_CACHE_LIMIT = 4096


def iso_to_ms(text: str) -> int:
    """Parse an ISO 8601 timestamp to epoch ms; a time with no offset is UTC. Raises ValueError when unparsable.

    `new Date().toISOString()` form (`2026-01-06T12:00:00.255Z`) takes a fast path: the whole second from a small
    cache (a capture's timestamps crowd into few seconds), then only the milliseconds are parsed.
    """
    if len(text) == 24 and text[23] == "Z" and text[19] == ".":
        second = _SECOND_MS.get(text[:19])
        if second is None:
            second = _second_ms(text[:19])
        millis = text[20:23]
        if second is not None and millis.isdigit() and millis.isascii():
            return second + int(millis)
    return _iso_to_ms_slow(text)


def _second_ms(prefix: str) -> int | None:
    """Epoch ms of a `YYYY-MM-DDTHH:MM:SS` prefix read from fixed positions (and cached); None when it is not in
    that exact form, for the general parser to decide."""
    if not (prefix[10] == "T" and prefix[13] == prefix[16] == ":"):
        return None
    day = _DAY_MS.get(prefix[:10])
    if day is None:
        day = _midnight_ms(prefix[:10])
    clock = prefix[11:13] + prefix[14:16] + prefix[17:19]
    if not (clock.isdigit() and clock.isascii()):
        return None
    hours, minutes, seconds = int(clock[:2]), int(clock[2:4]), int(clock[4:6])
    if not (hours < 24 and minutes < 60 and seconds < 60):
        return None
    if len(_SECOND_MS) >= _CACHE_LIMIT:
        _SECOND_MS.clear()
    second = _SECOND_MS[prefix] = day + ((hours * 60 + minutes) * 60 + seconds) * 1000
    return second


def _midnight_ms(date: str) -> int:
    midnight = _iso_to_ms_slow(date + "T00:00:00+00:00")
    if len(_DAY_MS) >= _CACHE_LIMIT:
        _DAY_MS.clear()
    _DAY_MS[date] = midnight
    return midnight


def _iso_to_ms_slow(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return _in_range(delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000)


def number_to_ms(value: float) -> int:
    """An epoch number to ms: values below 1e11 are seconds, others milliseconds. Raises ValueError (or
    OverflowError) when it is not a time in years 1-9999."""
    return _in_range(int(value * 1000) if abs(value) < _MS_THRESHOLD else int(value))


def _in_range(ms: int) -> int:
    if not MIN_MS <= ms <= MAX_MS:
        raise ValueError(f"time out of range: {ms} ms")
    return ms


def ms_to_iso(ms: int) -> str:
    """Epoch ms to ISO 8601 UTC with millisecond precision and a `Z` suffix."""
    moment = _EPOCH + timedelta(milliseconds=ms)  # (strftime's %Y does not pad years before 1000)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"
