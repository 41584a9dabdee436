from __future__ import annotations

import pytest

from pipeline.watermarks import END_OF_INPUT_MS, PartitionWatermark, SourceWatermark


def test_source_watermark_stamps_running_max_minus_lateness() -> None:
    mark = SourceWatermark(lateness_ms=10)
    records = [{"event_time_ms": t} for t in (100, 90, 130, 120)]
    mark.stamp(records)
    assert [r["watermark_ms"] for r in records] == [90, 90, 120, 120]
    assert mark.value == 120
    with pytest.raises(ValueError):
        SourceWatermark(-1)


def test_partition_watermark_is_the_slowest_running_producer() -> None:
    mark = PartitionWatermark()
    assert mark.value is None
    mark.observe("a", 100)
    mark.observe("b", 50)
    assert mark.value == 50
    mark.observe("b", 40)  # never goes back
    assert mark.value == 50
    mark.observe("b", 0, final=True)  # b ended: only a holds the partition
    assert mark.value == 100
    mark.observe("b", 10)  # a finished producer is not heard again
    assert mark.value == 100
    mark.forget("a")
    assert mark.value == END_OF_INPUT_MS  # everyone left has finished


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
