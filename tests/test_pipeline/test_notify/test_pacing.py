"""Retry schedule, Retry-After, rate limit and grouping: pure decisions with the time passed in."""

from __future__ import annotations

import pytest

from pipeline.notify.grouping import GroupBuffer
from pipeline.notify.parking import RetrySchedule
from pipeline.notify.rate_limit import SendWindow
from pipeline.notify.retry import MAX_RETRY_AFTER_MS, backoff_ms, classify_http, classify_smtp, retry_after_ms


def test_classification() -> None:
    assert [classify_http(s) for s in (200, 202, 400, 403, 404, 408, 429, 500, 503)] == [
        "ok", "ok", "fail", "fail", "fail", "retry", "retry", "retry", "retry"]
    assert [classify_smtp(c) for c in (250, 421, 451, 550, 554)] == ["ok", "retry", "retry", "fail", "fail"]


def test_backoff_doubles_with_jitter_in_the_upper_half_and_is_capped() -> None:
    lows = [backoff_ms(n, 1000, 60_000, 0.0) for n in range(1, 9)]
    highs = [backoff_ms(n, 1000, 60_000, 0.999999) for n in range(1, 9)]
    assert lows == [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
    assert highs == [999, 1999, 3999, 7999, 15999, 31999, 59999, 59999]
    assert backoff_ms(200, 1000, 60_000, 0.5) == 45_000


def test_retry_after_is_honoured_and_bounded() -> None:
    assert backoff_ms(1, 1000, 60_000, 0.0, retry_after=7000) == 7000
    assert backoff_ms(5, 1000, 60_000, 0.0, retry_after=10) == 8000
    assert backoff_ms(1, 1000, 60_000, 0.0, retry_after=10**9) == MAX_RETRY_AFTER_MS
    now = 1_700_000_000_000
    assert retry_after_ms("3", now) == 3000
    assert retry_after_ms("Tue, 14 Nov 2023 22:13:40 GMT", now) == 20_000
    assert retry_after_ms("Tue, 14 Nov 2023 22:00:00 GMT", now) == 0
    assert retry_after_ms("soon", now) is None
    assert retry_after_ms(None, now) is None


def test_send_window_allows_max_sends_in_any_window() -> None:
    window = SendWindow(2, 1000)
    assert window.wait_ms(0) == 0
    window.record(0)
    window.record(100)
    assert window.wait_ms(200) == 800
    assert window.wait_ms(1000) == 0
    window.record(1000)
    assert window.wait_ms(1050) == 50
    with pytest.raises(ValueError):
        SendWindow(0, 1000)


def test_grouping_waits_group_wait_then_sends_all_pending() -> None:
    buffer: GroupBuffer[str] = GroupBuffer(30_000, max_size=3)
    buffer.add("a", 0)
    buffer.add("b", 10_000)
    assert buffer.take(29_999) == [] and buffer.due_ms() == 30_000
    assert buffer.take(30_000) == ["a", "b"]
    assert buffer.due_ms() is None
    for i, item in enumerate("cdef"):
        buffer.add(item, 40_000 + i)
    assert buffer.take(40_004) == ["c", "d", "e"]  # full: no need to wait
    assert buffer.take(40_005) == []  # the rest keeps its group's time: due 30 s after "c" came
    assert buffer.take(70_000) == ["f"]


def test_group_wait_zero_sends_each_alert_alone_at_once() -> None:
    buffer: GroupBuffer[str] = GroupBuffer(0)
    buffer.add("a", 5)
    buffer.add("b", 5)
    assert buffer.take(5) == ["a"]
    assert buffer.take(5) == ["b"]
    assert buffer.take(5) == []


def test_group_interval_spaces_a_channels_messages_and_groups_what_came_meanwhile() -> None:
    buffer: GroupBuffer[str] = GroupBuffer(30_000, group_interval_ms=300_000)
    buffer.add("a", 0)
    assert buffer.take(30_000) == ["a"]
    buffer.add("b", 40_000)
    buffer.add("c", 100_000)
    assert buffer.due_ms() == 330_000
    assert buffer.take(329_999) == []
    assert buffer.take(330_000) == ["b", "c"]
    buffer.add("d", 1_000_000)  # long after: only group_wait applies
    assert buffer.due_ms() == 1_030_000


def test_retry_schedule_parks_failures_holds_their_alerts_and_stops_new_groups_when_down() -> None:
    schedule: RetrySchedule[tuple[str, int]] = RetrySchedule(lambda item: item[0])  # (alert, message)
    assert schedule.may_start(0) and schedule.empty
    schedule.park([("a", 1)], attempts=1, due_ms=100)
    assert schedule.may_start(0)  # one failure: the next group is the probe
    assert schedule.sendable([("a", 2), ("b", 1)]) == [("b", 1)] and schedule.held == [("a", 2)]
    schedule.park([("b", 1)], attempts=1, due_ms=50)
    assert not schedule.may_start(10)  # two failures in a row: the channel is down
    assert schedule.sendable([("c", 1)]) == [("c", 1)]  # (the caller asks may_start first)
    assert schedule.take_due(40) is None and schedule.next_due_ms() == 50
    retry = schedule.take_due(60)
    assert retry is not None and retry.group == [("b", 1)] and retry.attempts == 1
    schedule.succeeded()
    assert schedule.may_start(60)  # a success: the channel is up again
    assert schedule.finished([("b", 1)]) == []
    parked = schedule.take_due(100)
    assert parked is not None and schedule.finished(parked.group) == [("a", 2)]  # in order, after it
    assert schedule.empty


def test_retry_after_pauses_the_whole_channel() -> None:
    schedule: RetrySchedule[str] = RetrySchedule(lambda item: item)
    schedule.park(["a"], attempts=1, due_ms=100, retry_after_until_ms=1_000)
    assert not schedule.may_start(500) and schedule.take_due(500) is None and schedule.next_due_ms() == 1_000
    assert schedule.may_start(1_000) and schedule.take_due(1_000) is not None
    assert schedule.may_start(1_000)  # nothing parked: a new group may always go (it is the next probe)
