"""Stage 2 for one metrics partition, as one stateful operator: a metrics-topic value in, the service panes it
closed and the alerts out, `snapshot()` / `restore()` for checkpoints.

A service pane `[s, s + pane)` closes once every logs partition 0..N-1 has promised (`PartitionProgress`) that its
panes ending at or before `s + pane` were sent, or has ended (an ended partition holds nothing back; when all have
ended every open service pane closes). N comes from the progress records; until all N have been heard from,
nothing closes. Closing a pane evaluates the service rules on it, then releases the held endpoint alerts of that
service up to its end, with `inhibited_by` extended by the service-wide sources firing now.

The live worker drives one per metrics partition; replay, `replay --topic` and `rules test` drive one fed every
stage-1 step's `stage_messages` — the same object doing the same steps, so replay equals live.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.pane_store import DEFAULT_RETENTION_MS
from pipeline.panes import ClosedPane
from pipeline.partition_operator import Step
from pipeline.rules.engine import RuleEngine
from pipeline.service.messages import InvalidMetricsValue, decode_metrics_value, stage_messages
from pipeline.service.store import ServicePaneEvent, ServiceStore, pane_as_published, pane_of_snapshot
from pipeline.timestamps import iso_to_ms
from pipeline.windows import PANE_MS

CHECKPOINT_VERSION = 1
Due = Callable[[int, str], bool]  # (a held alert's pane end, its service) -> release it now


def _always(_end: int, _service: str) -> bool:
    return True


def _until(horizon_ms: int, service: str | None = None) -> Due:
    """Held alerts whose pane ended at or before `horizon_ms` (of `service`, or of any)."""
    def due(end: int, of: str) -> bool:
        return end <= horizon_ms and (service is None or of == service)
    return due


@dataclass(slots=True)
class ServiceStep:
    """What one metrics-topic value (or the end of the read) did."""

    closed: list[ServicePaneEvent] = field(default_factory=list)  # service panes it closed, oldest first
    alerts: list[dict[str, Any]] = field(default_factory=list)  # service alerts and released held alerts, in order
    evicted_starts: list[int] = field(default_factory=list)  # starts of closed service panes no longer held
    late_endpoint_panes: int = 0  # endpoint panes whose service pane had already closed (not merged)
    duplicates: int = 0  # endpoint panes already merged (a stage-1 worker published them again)
    invalid: str | None = None  # the value was not a metrics-topic value: why (it changed nothing else)


class ServiceOperator:
    """`engine`: the service-wide rules (`RuleEngine(..., stage="service")`; None: service panes only, held alerts
    released as they are)."""

    def __init__(self, engine: RuleEngine | None = None, *, retention_ms: int = DEFAULT_RETENTION_MS,
                 pane_ms: int = PANE_MS) -> None:
        self.store = ServiceStore(pane_ms, retention_ms)
        self.engine = engine
        self.partitions: int | None = None  # how many logs partitions there are (from the progress records)
        self.progress: dict[int, tuple[int | None, bool]] = {}  # logs partition -> (closed until, ended)
        self.held: list[tuple[int, dict[str, Any]]] = []  # (pane end, alert), in arrival order
        self.applied_offset = -1

    @property
    def partitions_heard(self) -> int:
        """How many of the logs partitions have sent progress."""
        return sum(1 for p in self.progress if self.partitions is not None and p < self.partitions)

    def feed_message(self, value: bytes | None, offset: int) -> ServiceStep:
        """One metrics-topic value, in offset order. A value that is not one changes nothing but the applied offset;
        `ServiceStep.invalid` says why (the caller dead-letters it)."""
        self.applied_offset = offset
        try:
            decoded = decode_metrics_value(value, self.store.pane_ms)
        except InvalidMetricsValue as error:
            return ServiceStep(invalid=str(error))
        return self.feed(decoded)

    def feed_sent(self, value: dict[str, Any], pane: ClosedPane | None, offset: int) -> ServiceStep:
        """A value this process made (`stage_messages`) and sent, read back at `offset` byte for byte: what
        `feed_message` gives on its bytes, without decoding them — an endpoint pane as it decodes (`pane`, from
        `pane_as_published`; `value` needs only its service, endpoint and window_start_ms), any other value as it
        was made (tested)."""
        self.applied_offset = offset
        if pane is None:
            return self.feed(value)
        step = ServiceStep()
        self._add(step, value["service"], value["endpoint"], value["window_start_ms"], pane)
        return step

    def feed(self, value: dict[str, Any]) -> ServiceStep:
        """One value as `stage_messages` made it (or `feed_message` checked it)."""
        step = ServiceStep()
        kind = value.get("kind")
        if kind == "progress":
            self.partitions = value["partitions"]
            closed_until, _ended = self.progress.get(value["partition"], (None, False))
            mark = value["closed_until_ms"]
            if closed_until is not None and (mark is None or mark < closed_until):
                mark = closed_until  # a stage-1 worker resent older progress after a restart
            self.progress[value["partition"]] = (mark, value["ended"])
            self._advance(step)
        elif kind == "held_alert":
            alert = value["alert"]
            self.held.append((iso_to_ms(alert["provenance"]["window_end"]), alert))
            horizon = self.store.closed_until_ms
            if horizon is not None:
                step.alerts += self._release(_until(horizon))  # its endpoint pane came late
        else:
            self._add(step, value["service"], value["endpoint"], value["window_start_ms"], pane_of_snapshot(value))
        return step

    def _add(self, step: ServiceStep, service: str, endpoint: str, start_ms: int, pane: ClosedPane) -> None:
        added = self.store.add(service, endpoint, start_ms, pane)
        step.duplicates += added == "duplicate"
        step.late_endpoint_panes += added == "late"

    def feed_step(self, step: Step, partition: int, partitions: int) -> ServiceStep:
        """In one process (replay, backtest): what `stage_messages(step, partition, partitions)` sends, in its
        order, without the round trip through snapshot dicts — each closed pane is taken as its snapshot decodes
        (`pane_as_published`), so the result is the one `feed` gives on the published values (tested)."""
        total = ServiceStep()
        for event in step.closed:
            self._add(total, event.service, event.endpoint, event.start_ms, pane_as_published(event.pane))
        rest = stage_messages(Step(held=step.held, progress=step.progress), partition, partitions)
        return self._merge(total, (self.feed(value) for _service, value in rest))

    def feed_many(self, values: Iterable[dict[str, Any]]) -> ServiceStep:
        """Several values in order, as one step."""
        return self._merge(ServiceStep(), (self.feed(value) for value in values))

    @staticmethod
    def _merge(total: ServiceStep, steps: Iterable[ServiceStep]) -> ServiceStep:
        for step in steps:
            total.closed += step.closed
            total.alerts += step.alerts
            total.evicted_starts = sorted({*total.evicted_starts, *step.evicted_starts})
            total.late_endpoint_panes += step.late_endpoint_panes
            total.duplicates += step.duplicates
        return total

    def end(self) -> ServiceStep:
        """The read ends (a replay, a backtest): every service pane that exists closes, every held alert goes out."""
        step = ServiceStep()
        self._close(step, self.store.close_all())
        step.alerts += self._release(_always)
        return step

    def _advance(self, step: ServiceStep) -> None:
        """Close what every logs partition has completed."""
        count = self.partitions
        if count is None or any(p not in self.progress for p in range(count)):
            return
        running = [mark for p, (mark, ended) in self.progress.items() if p < count and not ended]
        if not running:
            self._close(step, self.store.close_all())
        elif None not in running:
            self._close(step, self.store.close_until(min(m for m in running if m is not None)))

    def _close(self, step: ServiceStep, closed: list[ServicePaneEvent]) -> None:
        store = self.store
        step.closed = closed
        for event in closed:
            if self.engine is not None:
                def window_of(window_ms: int, event: ServicePaneEvent = event) -> ClosedPane:
                    return store.window(event.service, event.end_ms, window_ms)
                step.alerts += self.engine.on_service_pane_closed(event.service, event.start_ms, event.end_ms,
                                                                  event.d1_rows_read_today, window_of)
            step.alerts += self._release(_until(event.end_ms, event.service))
        horizon = store.closed_until_ms
        if horizon is not None and self.held:
            step.alerts += self._release(_until(horizon))  # their endpoint panes came late
        if closed:
            store.evict()
            step.evicted_starts = sorted({start for _service, start in store.evicted})

    def _release(self, due: Due) -> list[dict[str, Any]]:
        """The held alerts `due(pane end, service)` picks, in arrival order, marked with the service-wide sources
        that inhibit them now."""
        out, kept = [], []
        for end, alert in self.held:
            if not due(end, alert["labels"].get("service", "")):
                kept.append((end, alert))
                continue
            sources = [] if self.engine is None else self.engine.service_inhibitors(alert)
            new = [source for source in sources if source not in alert["inhibited_by"]]
            out.append({**alert, "inhibited_by": [*alert["inhibited_by"], *new]} if new else alert)
        self.held = kept
        return out

    def snapshot(self) -> dict[str, Any]:
        """The stage's state after the last value applied, JSON-ready — except the closed service panes, which the
        caller keeps as `ServiceStep.closed` gave them (`service_pane_to_dict`) and gives back to `restore`."""
        return {
            "v": CHECKPOINT_VERSION,
            "offset": self.applied_offset,
            "partitions": self.partitions,
            "progress": [[p, mark, ended] for p, (mark, ended) in sorted(self.progress.items())],
            "held": [alert for _end, alert in self.held],
            "alerts": self.engine.export_states() if self.engine is not None else [],
            **self.store.to_json(),
        }

    def restore(self, data: dict[str, Any], closed: list[ServicePaneEvent]) -> None:
        """An operator just built, from `snapshot()` and the closed service panes kept since."""
        self.store.load(data, closed)
        self.partitions = data["partitions"]
        self.progress = {p: (mark, ended) for p, mark, ended in data["progress"]}
        self.held = [(iso_to_ms(alert["provenance"]["window_end"]), alert) for alert in data["held"]]
        if self.engine is not None:
            self.engine.import_states(data["alerts"])
        self.applied_offset = data["offset"]
