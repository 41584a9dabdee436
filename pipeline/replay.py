"""Offline replay: records read from files, driven through the live path's operators.

Each source is stamped with its own watermark exactly as ingest stamps it (`SourceWatermark`), and its records go
to one `PartitionOperator` as batches of that producer, as the logs topic would carry them; the end of a source is
its final batch. So panes close as the slowest running source's watermark passes their end, everything closes when
every source has ended, and the operator decides lateness, panes and alerts as it does for the live worker.
What each step sends to the metrics topic (`stage_messages`: panes, held alerts, progress of this one logs
partition) goes to a `ServiceOperator`, the live service stage's object: service panes, service alerts and the
held endpoint alerts come out as they do live.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipeline.batching import DEFAULT_LATENESS_MS
from pipeline.log_columns import LogColumns
from pipeline.pane_store import DEFAULT_RETENTION_MS, ClosedPaneEvent, PaneStore
from pipeline.partition_operator import PartitionOperator, Step
from pipeline.rules.engine import RuleEngine
from pipeline.service import ServiceOperator, ServicePaneEvent, ServiceStep
from pipeline.watermarks import SourceWatermark
from pipeline.windows import PANE_MS


@dataclass(slots=True)
class ReplayStep:
    """One batch through both stages."""

    endpoint: Step  # what stage 1 did (its closed panes, published alerts, held alerts, progress)
    service: ServiceStep  # what stage 2 did with what stage 1 sent

    @property
    def closed(self) -> list[ClosedPaneEvent]:
        return self.endpoint.closed

    @property
    def service_closed(self) -> list[ServicePaneEvent]:
        return self.service.closed

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """What goes to the alerts topic: stage 1's alerts, then stage 2's (service alerts, released held ones)."""
        return self.endpoint.alerts + self.service.alerts


class Replay:
    """`engine`: the rules (a stage-1 `RuleEngine`; the service stage gets `engine.for_stage("service")`) whose
    transitions `step` returns (None: panes only)."""

    def __init__(self, lateness_ms: int = DEFAULT_LATENESS_MS, pane_ms: int = PANE_MS,
                 retention_ms: int = DEFAULT_RETENTION_MS, engine: RuleEngine | None = None) -> None:
        self.lateness_ms = lateness_ms
        # A file has no publish times: every source is waited for (no idle producers).
        self.operator = PartitionOperator(engine, retention_ms=retention_ms, idle_producer_ms=0, pane_ms=pane_ms)
        self.service = ServiceOperator(None if engine is None else engine.for_stage("service"),
                                       retention_ms=retention_ms, pane_ms=pane_ms)
        self._sources: dict[str, SourceWatermark] = {}
        self.late = 0
        self.late_endpoint_panes = 0  # none in a replay of files (one partition): counted to show it

    @property
    def store(self) -> PaneStore:
        return self.operator.store

    def _source(self, source: str) -> SourceWatermark:
        watermark = self._sources.get(source)
        if watermark is None:
            watermark = self._sources[source] = SourceWatermark(self.lateness_ms)
        return watermark

    def _both(self, step: Step) -> ReplayStep:
        service = self.service.feed_step(step, 0, 1)
        self.late_endpoint_panes += service.late_endpoint_panes
        return ReplayStep(step, service)

    def step(self, source: str, records: list[dict[str, Any]] | LogColumns) -> ReplayStep:
        """Records of `source`, in the order read (parsed dicts, or already columns: a split capture's second half),
        stamped here: what closed and the alerts it gave."""
        watermark = self._source(source)
        if isinstance(records, LogColumns):
            records = watermark.stamp_columns(records)
        else:
            watermark.stamp(records)
        step = self.operator.feed(source, watermark.value, records)
        self.late += step.late
        return self._both(step)

    def step_end(self, source: str) -> ReplayStep:
        """`source` has ended: its final batch."""
        return self._both(self.operator.feed(source, self._source(source).value, [], final=True))

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
