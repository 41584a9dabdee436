"""Offline replay: records read from files, driven through the live path's operator.

Each source is stamped with its own watermark exactly as ingest stamps it (`SourceWatermark`), and its records go
to one `PartitionOperator` as batches of that producer, as the logs topic would carry them; the end of a source is
its final batch. So panes close as the slowest running source's watermark passes their end, everything closes when
every source has ended, and the operator decides lateness, panes and alerts as it does for the live worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.batching import DEFAULT_LATENESS_MS
from pipeline.pane_store import DEFAULT_RETENTION_MS, ClosedPaneEvent, PaneStore
from pipeline.partition_operator import PartitionOperator, Step
from pipeline.rules.engine import RuleEngine
from pipeline.watermarks import SourceWatermark
from pipeline.windows import PANE_MS


class Replay:
    """`engine`: the rules whose transitions `step` returns (None: panes only)."""

    def __init__(self, lateness_ms: int = DEFAULT_LATENESS_MS, pane_ms: int = PANE_MS,
                 retention_ms: int = DEFAULT_RETENTION_MS, engine: RuleEngine | None = None) -> None:
        self.lateness_ms = lateness_ms
        # A file has no publish times: every source is waited for (no idle producers).
        self.operator = PartitionOperator(engine, retention_ms=retention_ms, idle_producer_ms=0, pane_ms=pane_ms)
        self._sources: dict[str, SourceWatermark] = {}
        self.late = 0

    @property
    def store(self) -> PaneStore:
        return self.operator.store

    def _source(self, source: str) -> SourceWatermark:
        watermark = self._sources.get(source)
        if watermark is None:
            watermark = self._sources[source] = SourceWatermark(self.lateness_ms)
        return watermark

    def step(self, source: str, records: list[dict[str, Any]]) -> Step:
        """Records of `source`, in the order read: what closed and the alerts it gave."""
        watermark = self._source(source)
        watermark.stamp(records)
        step = self.operator.feed(source, watermark.value, records)
        self.late += step.late
        return step

    def step_end(self, source: str) -> Step:
        """`source` has ended: its final batch."""
        return self.operator.feed(source, self._source(source).value, [], final=True)

    def feed(self, source: str, records: list[dict[str, Any]]) -> list[ClosedPaneEvent]:
        return self.step(source, records).closed

    def end(self, source: str) -> list[ClosedPaneEvent]:
        return self.step_end(source).closed


def replay_all(inputs: Iterable[tuple[str, Iterable[list[dict[str, Any]]]]],
               lateness_ms: int = DEFAULT_LATENESS_MS) -> list[ClosedPaneEvent]:
    """Every closed pane of the given sources, each given as (name, record lists), read one after another."""
    replay = Replay(lateness_ms)
    events: list[ClosedPaneEvent] = []
    for source, chunks in inputs:
        for records in chunks:
            events.extend(replay.feed(source, records))
        events.extend(replay.end(source))
    return events
