"""Live provenance: the offset range of the logs-topic messages that fed a window."""

from __future__ import annotations

from pipeline.rules.input_offsets import InputOffsets
from tests.test_pipeline.records import BASE_MS, record

MIN = 60_000


def test_a_window_spans_the_messages_with_records_in_its_panes() -> None:
    offsets = InputOffsets("t.logs", 3, retention_ms=60 * MIN)
    offsets.observe(10, [record(BASE_MS + 5_000), record(BASE_MS + 65_000)])  # panes 0 and 1
    offsets.observe(11, [record(BASE_MS + 70_000)])  # pane 1
    offsets.observe(12, [])  # a heartbeat feeds nothing
    offsets.observe(13, [record(BASE_MS + 2 * MIN + 1)])  # pane 2
    offsets.observe(14, [record(BASE_MS + 30_000)])  # a late record of pane 0
    assert offsets.window(BASE_MS + MIN, BASE_MS + 2 * MIN) == {"topic": "t.logs", "partition": 3,
                                                                "first_offset": 10, "last_offset": 11}
    assert offsets.window(BASE_MS, BASE_MS + MIN)["last_offset"] == 14
    assert offsets.window(BASE_MS, BASE_MS + 3 * MIN)["first_offset"] == 10
    assert offsets.window(BASE_MS + 5 * MIN, BASE_MS + 6 * MIN) is None
    restored = InputOffsets("t.logs", 3, retention_ms=60 * MIN)
    restored.load(offsets.to_json())
    assert restored.window(BASE_MS, BASE_MS + 3 * MIN) == offsets.window(BASE_MS, BASE_MS + 3 * MIN)


def test_old_panes_are_dropped() -> None:
    offsets = InputOffsets("t.logs", 0, retention_ms=5 * MIN)
    for minute in range(100):
        offsets.observe(minute, [record(BASE_MS + minute * MIN)])
    assert len(offsets.panes) <= 21
    assert offsets.window(BASE_MS, BASE_MS + 50 * MIN) is None
    assert offsets.window(BASE_MS + 99 * MIN, BASE_MS + 100 * MIN)["first_offset"] == 99
