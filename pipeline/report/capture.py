"""`CaptureReport`: a report from records, driven like an offline replay (records in, in batches; `end()`).

The records are counted for the record-level sections, run through the stream core (`Replay`: the snapshots the
live workers send, endpoint panes and service panes) and, with a rule engine, through the rules of both stages for
the alert timeline.
"""

from __future__ import annotations

from typing import Any

from pipeline.batching import DEFAULT_LATENESS_MS
from pipeline.metrics import snapshot
from pipeline.replay import Replay, ReplayStep
from pipeline.report.build import build_report
from pipeline.report.records import RecordTotals
from pipeline.report.services import ServiceTotals
from pipeline.report.snapshots import PaneTotals
from pipeline.rules.engine import RuleEngine
from pipeline.service import service_snapshot

STREAM = "files"  # as `tailwatch replay` and `ingest --from`: inputs given together are one stream


class CaptureReport:
    def __init__(self, engine: RuleEngine | None = None, lateness_ms: int = DEFAULT_LATENESS_MS) -> None:
        self.engine = engine
        self.replay = Replay(lateness_ms, engine=engine)
        self.panes = PaneTotals()
        self.records = RecordTotals()
        self.alerts: list[dict[str, Any]] = []
        self.services = ServiceTotals()  # the service stage's panes (`ServicePaneSnapshot` dicts)

    def _closed(self, step: ReplayStep) -> None:
        self.panes.add(snapshot(event) for event in step.closed)
        self.services.add(service_snapshot(event) for event in step.service_closed)
        self.alerts.extend(step.alerts)

    def feed(self, records: list[dict[str, Any]]) -> None:
        self.records.add(records)
        self._closed(self.replay.step(STREAM, records))

    def end(self) -> None:
        self._closed(self.replay.step_end(STREAM))

    def report(self, top: int = 10, inputs: list[str] | None = None) -> dict[str, Any]:
        return build_report(self.panes, self.records, None if self.engine is None else self.alerts, "files", top,
                            inputs, services=self.services)
