"""Event-time conversions: ISO 8601 and epoch numbers to epoch ms, and back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.timestamps import MAX_MS, MIN_MS, iso_to_ms, ms_to_iso, number_to_ms

T0 = 1_767_700_800_000  # 2026-01-06T12:00:00Z


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-01-06T12:00:00.255Z", T0 + 255),
        ("2026-01-06T12:00:00.255+00:00", T0 + 255),
        ("2026-01-06T13:00:00.255+01:00", T0 + 255),
        ("2026-01-06T07:30:00-04:30", T0),
        ("2026-01-06T12:00:00", T0),  # no offset: UTC
        ("2026-01-06 12:00:00.999999Z", T0 + 999),  # microseconds are truncated to ms
        ("2026-01-06", T0 - 12 * 3_600_000),
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59.999Z", -1),
    ],
)
def test_iso_to_ms(text: str, ms: int) -> None:
    assert iso_to_ms(text) == ms


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "2026-01-06T25:00:00Z", "1767700800"])
def test_iso_to_ms_rejects_what_is_not_a_time(text: str) -> None:
    with pytest.raises(ValueError):
        iso_to_ms(text)


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        (T0, T0),  # epoch ms
        (T0 / 1000, T0),  # epoch seconds
        (1_767_700_800.255, T0 + 255),
        (99_999_999_999, 99_999_999_999_000),  # just below the threshold: seconds
        (100_000_000_000, 100_000_000_000),  # from the threshold on: ms
        (0, 0),
    ],
)
def test_number_to_ms(value: float, ms: int) -> None:
    assert number_to_ms(value) == ms


@pytest.mark.parametrize("value", [MAX_MS + 1, MIN_MS - 1, 1e300, -1e300])
def test_number_to_ms_rejects_times_no_date_can_hold(value: float) -> None:
    with pytest.raises(ValueError, match="out of range"):
        number_to_ms(value)


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_number_to_ms_rejects_non_finite(value: float) -> None:
    with pytest.raises((ValueError, OverflowError)):
        number_to_ms(value)


def test_range_is_what_ms_to_iso_can_print() -> None:
    assert ms_to_iso(MIN_MS) == "0001-01-01T00:00:00.000Z"
    assert ms_to_iso(MAX_MS) == "9999-12-31T23:59:59.999Z"
    assert number_to_ms(MAX_MS) == MAX_MS


def test_ms_to_iso() -> None:
    assert ms_to_iso(T0 + 7) == "2026-01-06T12:00:00.007Z"
    assert ms_to_iso(-1) == "1969-12-31T23:59:59.999Z"


@settings(max_examples=200, deadline=None)
@given(st.integers(MIN_MS, MAX_MS))
def test_iso_round_trip(ms: int) -> None:
    text = ms_to_iso(ms)
    assert iso_to_ms(text) == ms
    expected = datetime(1970, 1, 1, tzinfo=UTC).timestamp() * 1000 + ms  # an independent check for recent times
    if abs(ms) < 2**52:
        assert datetime.fromisoformat(text).timestamp() * 1000 == pytest.approx(expected, abs=1)
