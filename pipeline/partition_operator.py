"""The stream core of one logs partition, as one stateful operator: a batch in, what it closed and the alert
transitions out, `snapshot()` / `restore()` for checkpoints.

Everything that turns log batches into metrics and alerts goes through here — the live stream worker (one operator
per owned partition), `replay --topic` (one per partition of the topic's history), `replay` of files and `rules
test` (one operator fed by `pipeline.replay.Replay`, which stamps the records as ingest does). So replay equals
live by construction: the same object does the same steps in the same order; the drivers only move bytes.

A step, in order: count the records into their panes (lateness decided per record from its own stamp), note the
input offsets (live provenance), advance the partition watermark with the batch's producer stamp, close the panes
it passed — or, when every producer has ended, the panes that exist — and run the rules on the panes that closed.
For the service stage a step also says how far the partition is complete (`Step.progress`, when that changed) and
which transitions a service-wide rule may inhibit (`Step.held`); `pipeline.service.stage_messages` turns a step into
what goes to the metrics topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.log_batches import InvalidLogBatch, decode_pane_batch
from pipeline.log_columns import LogColumns, as_columns
from pipeline.pane_codec import SEP, open_from_dict, open_to_dict
from pipeline.pane_records import Records
from pipeline.pane_store import DEFAULT_RETENTION_MS, ClosedPaneEvent, PaneStore
from pipeline.panes import ClosedPane
from pipeline.rules.engine import RuleEngine
from pipeline.rules.input_offsets import InputOffsets
from pipeline.watermarks import DEFAULT_IDLE_PRODUCER_MS, PartitionWatermark
from pipeline.windows import PANE_MS

CHECKPOINT_VERSION = 2
LEGACY_END_OF_INPUT_MS = 2**62  # what checkpoints before version 2 wrote as `closed_until_ms` once input ended


@dataclass(frozen=True, slots=True)
class Progress:
    """Every pane of the partition ending at or before `closed_until_ms` (a pane boundary) has closed; `ended`: every
    producer has ended (or the read has), so the partition holds nothing back."""

    closed_until_ms: int | None
    ended: bool


@dataclass(slots=True)
class Step:
    """What one batch (or the end of the read) did."""

    closed: list[ClosedPaneEvent] = field(default_factory=list)  # the panes it closed, oldest first
    alerts: list[dict[str, Any]] = field(default_factory=list)  # alert transitions (AlertEvent dicts)
    evicted_starts: list[int] = field(default_factory=list)  # starts of closed panes no longer held, ascending
    late: int = 0
    records: int = 0
    invalid: str | None = None  # the message was not a log batch: why (it changed nothing else)
    held: list[dict[str, Any]] = field(default_factory=list)  # transitions of endpoint rules a service rule inhibits
    progress: Progress | None = None  # the partition's progress, when this step changed it


class PartitionOperator:
    """`engine`: the rules (None: panes only). `offsets`: live provenance, the input offsets of each pane."""

    def __init__(self, engine: RuleEngine | None = None, *, retention_ms: int = DEFAULT_RETENTION_MS,
                 idle_producer_ms: int = DEFAULT_IDLE_PRODUCER_MS, offsets: InputOffsets | None = None,
                 pane_ms: int = PANE_MS) -> None:
        self.store = PaneStore(pane_ms, retention_ms)
        self.watermark = PartitionWatermark(idle_producer_ms)
        self.engine = engine
        self.offsets = offsets
        self.applied_offset = -1  # the last message applied (offset-driven callers)
        self.progress = Progress(None, False)  # as of the last step

    @property
    def ended(self) -> bool:
        """Every producer of this partition has ended (and none started since)."""
        return self.watermark.ended

    def feed_message(self, value: bytes | None, offset: int, published_ms: int | None = None) -> Step:
        """One logs-topic message, in offset order, with its Kafka timestamp. A message that is not a `LogBatch`
        changes nothing but the applied offset; `Step.invalid` says why (the caller dead-letters it)."""
        try:
            batch = decode_pane_batch(value)
            columns = batch.pane_columns()
        except InvalidLogBatch as error:
            self.applied_offset = offset
            return Step(invalid=str(error))
        return self.feed(batch.producer, batch.watermark_ms, columns, batch.final, offset=offset,
                         published_ms=published_ms)

    def feed(self, producer: str, watermark_ms: int | None, records: Records | LogColumns, final: bool = False, *,
             offset: int | None = None, published_ms: int | None = None) -> Step:
        """One batch of `producer`: its records (each stamped with the producer's watermark as it was read), the
        producer's watermark when it sent the batch, and whether it was its last."""
        batch = as_columns(records)
        step = Step(records=len(batch))
        step.late = self.store.add(batch)
        if offset is not None:
            if self.offsets is not None:
                self.offsets.observe(offset, batch)
            self.applied_offset = offset
        self.watermark.observe(producer, watermark_ms, final, published_ms)
        if self.watermark.ended:
            self._close(step, self.store.close_all())
        else:
            mark = self.watermark.value
            if mark is not None:
                self._close(step, self.store.close_until(mark))
        self._note_progress(step, self.watermark.ended)
        return step

    def end(self) -> Step:
        """The read ends (a backtest's history, a file replay): every pane that exists closes."""
        step = Step()
        self._close(step, self.store.close_all())
        self._note_progress(step, True)
        return step

    def _current_progress(self, ended: bool) -> Progress:
        horizon = self.store.closed_until_ms
        return Progress(None if horizon is None else horizon - horizon % self.store.pane_ms, ended)

    def _note_progress(self, step: Step, ended: bool) -> None:
        progress = self._current_progress(ended)
        if progress != self.progress:
            self.progress = step.progress = progress

    def _close(self, step: Step, closed: list[ClosedPaneEvent]) -> None:
        step.evicted_starts = sorted({start for _service, _endpoint, start in self.store.evicted})
        if not closed:
            return
        step.closed = closed
        if self.engine is not None:
            alerts = self.engine.on_panes_closed(closed, self.store)
            held = self.engine.held_rules
            step.alerts = [alert for alert in alerts if alert["rule"] not in held] if held else alerts
            step.held = [alert for alert in alerts if alert["rule"] in held] if held else []

    def snapshot(self) -> dict[str, Any]:
        """The partition's state after the last message applied, JSON-ready — except the closed panes, which the
        caller keeps as `Step.closed` gave them (once each) and gives back to `restore`."""
        store = self.store
        return {
            "v": CHECKPOINT_VERSION,
            "offset": self.applied_offset,
            "alerts": self.engine.export_states() if self.engine is not None else [],
            "closed_until_ms": store.closed_until_ms,
            "watermark": self.watermark.snapshot(),
            "rows_read_today": {f"{s}{SEP}{e}": list(v) for (s, e), v in store.rows_read_today.items()},
            "open": [[service, endpoint, start, open_to_dict(pane)]
                     for (service, endpoint, start), pane in sorted(store.open.items(), key=lambda kv: kv[0])],
            "input_offsets": self.offsets.to_json() if self.offsets is not None else None,
        }

    def restore(self, data: dict[str, Any], closed: list[tuple[str, str, int, ClosedPane]]) -> None:
        """An operator just built, from `snapshot()` and the closed panes kept since. Also reads version 1
        checkpoints, and cures their end-of-input horizon (which made every later record late)."""
        store = self.store
        horizon: int | None = data["closed_until_ms"]
        if horizon is not None and horizon >= LEGACY_END_OF_INPUT_MS:
            ends = [start + store.pane_ms for _s, _e, start, _p in closed]
            horizon = max(ends) if ends else None
        store.closed_until_ms = horizon
        self.watermark.restore(data.get("watermark", data))
        for key, (day, rows) in data["rows_read_today"].items():
            service, endpoint = key.split(SEP, 1)
            store.rows_read_today[(service, endpoint)] = (day, rows)
        for service, endpoint, start, pane in data["open"]:
            store.open[(service, endpoint, start)] = open_from_dict(pane)
        # Panes that closed after the checkpoint are open in it: they close again as their messages are re-applied.
        for service, endpoint, start, closed_pane in sorted(closed, key=lambda item: item[2]):
            if horizon is not None and start + store.pane_ms <= horizon:
                store.keep(service, endpoint, start, closed_pane)
        if self.engine is not None:
            self.engine.import_states(data.get("alerts", []))
        if self.offsets is not None:
            self.offsets.load(data.get("input_offsets"))
        self.applied_offset = data["offset"]
        self.progress = self._current_progress(self.watermark.ended)  # what the steps up to the checkpoint sent
