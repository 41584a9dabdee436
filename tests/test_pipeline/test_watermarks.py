from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.log_columns import from_records
from pipeline.watermarks import MAX_PRODUCERS, PartitionWatermark, SourceWatermark


def test_source_watermark_stamps_running_max_minus_lateness() -> None:
    mark = SourceWatermark(lateness_ms=10)
    records = [{"event_time_ms": t} for t in (100, 90, 130, 120)]
    mark.stamp(records)
    assert [r["watermark_ms"] for r in records] == [90, 90, 120, 120]
    assert mark.value == 120
    with pytest.raises(ValueError):
        SourceWatermark(-1)


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(st.lists(st.integers(-10**12, 10**12), max_size=20), max_size=6),
       lateness=st.integers(0, 10**6))
def test_columns_are_stamped_as_records_are(batches: list[list[int]], lateness: int) -> None:
    """`stamp_columns` (a split capture's second half) gives each record the stamp `stamp` gives, across batches."""
    by_records, by_columns = SourceWatermark(lateness), SourceWatermark(lateness)
    for times in batches:
        records = [{"service": "s", "endpoint": "/a", "event_time_ms": t, "status": 200, "outcome": "ok",
                    "duration_ms": None, "cpu_ms": None, "d1": []} for t in times]
        columns = by_columns.stamp_columns(from_records(records))
        by_records.stamp(records)
        assert columns.watermark_ms.tolist() == [r["watermark_ms"] for r in records]
        assert by_columns.value == by_records.value


def test_partition_watermark_is_the_slowest_running_producer() -> None:
    mark = PartitionWatermark()
    assert mark.value is None
    mark.observe("a", 100)
    mark.observe("b", 50)
    assert mark.value == 50
    mark.observe("b", 40)  # never goes back
    assert mark.value == 50
    mark.observe("b", 0, final=True)  # b ended: only a holds the partition
    assert mark.value == 100 and not mark.ended
    mark.observe("a", 120, final=True)  # every producer ended: the partition has ended, with no watermark
    assert mark.value is None and mark.ended
    mark.observe("b", 10)  # a producer (even one that ended) that speaks again runs again, from its own stamp
    assert mark.value == 10 and not mark.ended
    assert mark.snapshot() == {"producers": {"b": 10}, "seen": {}, "newest_seen_ms": None, "ended": False}


def test_a_heartbeat_without_a_watermark_does_not_start_a_partition_again() -> None:
    mark = PartitionWatermark()
    mark.observe("a", 100, final=True)
    assert mark.ended
    mark.observe("b", None)  # an empty heartbeat of a producer that has read nothing yet
    assert mark.ended and mark.value is None


def test_restarted_and_crashed_producers_do_not_accumulate() -> None:
    """1,000 ingest restarts (each a new producer id, each ending with its final batch) and as many crashes (no
    final batch): the state held stays one producer, plus the crashed ones heard from within the forget bound."""
    mark = PartitionWatermark(idle_ms=60_000)
    hour = 3_600_000
    for i in range(1_000):
        mark.observe(f"clean-{i}", i * 1_000, seen_ms=i * 10_000)
        mark.observe(f"clean-{i}", i * 1_000, final=True, seen_ms=i * 10_000 + 1)
        mark.observe(f"crash-{i}", i * 1_000, seen_ms=i * 10_000 + 2)  # never ends
    held = mark.snapshot()
    assert set(held) == {"producers", "seen", "newest_seen_ms", "ended"}
    assert len(held["producers"]) <= hour // 10_000 + 1  # the crashed ones of the last hour of publish time
    assert set(held["seen"]) == set(held["producers"])
    burst = PartitionWatermark()  # no publish times: only the hard cap bounds it
    for i in range(MAX_PRODUCERS + 50):
        burst.observe(f"p{i}", i)
    assert len(burst.producers) == MAX_PRODUCERS


def test_old_checkpoints_with_finished_producers_restore_as_ended() -> None:
    mark = PartitionWatermark()
    mark.restore({"producers": {}, "finished": ["a/files"], "seen": {}, "newest_seen_ms": None})
    assert mark.ended and mark.value is None


def test_an_idle_producer_stops_holding_the_partition_back() -> None:
    """A crashed ingest never sends its final batch: after `idle_ms` of publish time without a message from it,
    the other producers alone move the watermark; a producer that speaks again holds it again."""
    mark = PartitionWatermark(idle_ms=1_000)
    mark.observe("crashed", 100, seen_ms=10_000)
    mark.observe("live", 500, seen_ms=10_500)
    assert mark.value == 100 and mark.idle() == set()
    mark.observe("live", 900, seen_ms=11_000)  # exactly idle_ms after: still waited for
    assert mark.value == 100
    mark.observe("live", 950, seen_ms=11_001)
    assert mark.idle() == {"crashed"} and mark.value == 950
    mark.observe("crashed", 200, seen_ms=11_002)  # back: it holds the partition again
    assert mark.idle() == set() and mark.value == 200


def test_when_every_producer_is_idle_nothing_moves() -> None:
    mark = PartitionWatermark(idle_ms=1_000)
    mark.observe("a", 100, seen_ms=0)
    mark.observe("b", 300, seen_ms=5_000)
    assert mark.value == 300  # a is idle relative to b's message
    mark.observe("b", 400, final=True, seen_ms=9_000)  # b ends; a is the only one left, idle but not forgotten
    assert mark.value == 100


def test_without_publish_times_or_idle_ms_every_producer_is_waited_for() -> None:
    mark = PartitionWatermark()
    mark.observe("a", 100, seen_ms=0)
    mark.observe("b", 300, seen_ms=10**9)
    assert mark.value == 100
    untimed = PartitionWatermark(idle_ms=1)
    untimed.observe("a", 100)
    untimed.observe("b", 300)
    assert untimed.value == 100
    with pytest.raises(ValueError):
        PartitionWatermark(idle_ms=-1)
