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
