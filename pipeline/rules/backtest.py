"""Backtest over the logs topic's history: the stream worker's core — per partition, the panes, the partition
watermark from the batches' stamps and the rules — driven by log batches read back from the topic instead of a
consumer group. Records keep the watermarks ingest stamped on them, so lateness is decided as it was live; the
alert events are the ones the worker gave (replay leaves the live-only `provenance.input` null).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.log_batches import InvalidLogBatch, decode_pane_batch
from pipeline.pane_store import DEFAULT_RETENTION_MS, ClosedPaneEvent, PaneStore
from pipeline.rules.engine import CompiledRule, RuleEngine
from pipeline.rules.silences import SilenceSet
from pipeline.watermarks import DEFAULT_IDLE_PRODUCER_MS, END_OF_INPUT_MS, PartitionWatermark
from pipeline.windows import PANE_MS
from schemas.rules import RuleFile


@dataclass
class _Partition:
    store: PaneStore
    engine: RuleEngine
    watermark: PartitionWatermark


class LogTopicBacktest:
    def __init__(self, rules: list[CompiledRule], rule_file: RuleFile, rules_hash: str,
                 silences: SilenceSet | None = None, retention_ms: int = DEFAULT_RETENTION_MS,
                 idle_producer_ms: int = DEFAULT_IDLE_PRODUCER_MS) -> None:
        self._rules = (rules, rule_file, rules_hash, silences)
        self._idle_producer_ms = idle_producer_ms
        self._retention_ms = retention_ms
        self.partitions: dict[int, _Partition] = {}
        self.panes_closed = 0
        self.records = 0
        self.late = 0
        self.invalid = 0  # messages that were not log batches

    def _partition(self, partition: int) -> _Partition:
        state = self.partitions.get(partition)
        if state is None:
            state = self.partitions[partition] = _Partition(PaneStore(PANE_MS, self._retention_ms),
                                                            RuleEngine(*self._rules),
                                                            PartitionWatermark(self._idle_producer_ms))
        return state

    def feed(self, partition: int, value: bytes | None, published_ms: int | None = None) -> list[dict[str, Any]]:
        """One logs-topic message of `partition`, in offset order, with its Kafka timestamp; returns the alert events
        it gave. A message that is not a `LogBatch` is counted in `invalid` and skipped, as the worker skips it."""
        try:
            batch = decode_pane_batch(value)
        except InvalidLogBatch:
            self.invalid += 1
            return []
        state = self._partition(partition)
        records = batch.records
        self.records += len(records)
        self.late += state.store.add(records)
        state.watermark.observe(batch.producer, batch.watermark_ms, batch.final, published_ms)
        mark = state.watermark.value
        return [] if mark is None else self._close(state, mark)

    def end(self) -> list[dict[str, Any]]:
        """The history read ends: every pane closes (as at the end of input)."""
        alerts = []
        for partition in sorted(self.partitions):
            alerts += self._close(self.partitions[partition], END_OF_INPUT_MS)
        return alerts

    def _close(self, state: _Partition, mark: int) -> list[dict[str, Any]]:
        closed: list[ClosedPaneEvent] = state.store.close_until(mark)
        self.panes_closed += len(closed)
        return state.engine.on_panes_closed(closed, state.store) if closed else []
