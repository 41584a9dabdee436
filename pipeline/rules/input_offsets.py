"""Live provenance: which logs-topic messages fed a window. Pure bookkeeping, one instance per partition.

For each one-minute pane start it keeps the first and last offset of the messages that had a record in that
pane; a window's input is the range over its panes. Every message that fed the window lies in the range (which
may also hold messages of the partition's other endpoints). Panes older than twice the retention behind the
newest one seen are dropped, so memory stays bounded.
"""

from __future__ import annotations

from typing import Any

from pipeline.log_columns import LogColumns, as_columns
from pipeline.pane_records import Records
from pipeline.windows import PANE_MS


class InputOffsets:
    def __init__(self, topic: str, partition: int, retention_ms: int, pane_ms: int = PANE_MS) -> None:
        self.topic = topic
        self.partition = partition
        self.keep_ms = 2 * retention_ms
        self.pane_ms = pane_ms
        self.panes: dict[int, tuple[int, int]] = {}  # pane start -> (first offset, last offset)
        self.newest: int | None = None

    def observe(self, offset: int, records: Records | LogColumns) -> None:
        batch = as_columns(records)
        if not len(batch):
            return
        pane_ms = self.pane_ms
        stamps = batch.event_time_ms
        oldest, newest = int(stamps.min()), int(stamps.max())
        first, last = oldest - oldest % pane_ms, newest - newest % pane_ms
        if self.newest is None or last > self.newest:
            self.newest = last
        floor = self.newest - self.keep_ms
        for start in range(max(first, floor), last + pane_ms, pane_ms):
            known = self.panes.get(start)
            self.panes[start] = (offset, offset) if known is None else (min(known[0], offset), max(known[1], offset))
        if len(self.panes) * pane_ms > 2 * self.keep_ms:
            self.panes = {start: span for start, span in self.panes.items() if start >= floor}

    def window(self, start_ms: int, end_ms: int) -> dict[str, Any] | None:
        """The input of `[start_ms, end_ms)`, shaped like `schemas.alerts.InputOffsets`; None when unknown."""
        spans = [span for start, span in self.panes.items() if start_ms <= start < end_ms]
        if not spans:
            return None
        return {"topic": self.topic, "partition": self.partition,
                "first_offset": min(first for first, _ in spans), "last_offset": max(last for _, last in spans)}

    def to_json(self) -> list[list[int]]:
        return [[start, first, last] for start, (first, last) in sorted(self.panes.items())]

    def load(self, rows: list[list[int]] | None) -> None:
        self.panes = {start: (first, last) for start, first, last in rows or []}
        self.newest = max(self.panes, default=None)
