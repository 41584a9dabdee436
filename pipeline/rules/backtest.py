"""Backtest over the logs topic's history: one `PartitionOperator` per partition — the object the live stream
worker drives — fed the messages read back from the topic (in offset order, with their publish times) instead of
a consumer group's. Records keep the watermarks ingest stamped on them, so lateness is decided as it was live,
and the alert events are the ones the worker gave (with the live provenance, the input offsets, as well).
"""

from __future__ import annotations

from typing import Any

from pipeline.pane_store import DEFAULT_RETENTION_MS
from pipeline.partition_operator import PartitionOperator, Step
from pipeline.rules.engine import CompiledRule, RuleEngine
from pipeline.rules.input_offsets import InputOffsets
from pipeline.rules.silences import SilenceSet
from pipeline.watermarks import DEFAULT_IDLE_PRODUCER_MS
from schemas.rules import RuleFile


class LogTopicBacktest:
    def __init__(self, rules: list[CompiledRule], rule_file: RuleFile, rules_hash: str,
                 silences: SilenceSet | None = None, retention_ms: int = DEFAULT_RETENTION_MS,
                 idle_producer_ms: int = DEFAULT_IDLE_PRODUCER_MS, topic: str | None = None) -> None:
        """`topic`: the logs topic's name, for the alerts' provenance (None leaves it out)."""
        self._rules = (rules, rule_file, rules_hash, silences)
        self._idle_producer_ms = idle_producer_ms
        self._retention_ms = retention_ms
        self._topic = topic
        self.partitions: dict[int, PartitionOperator] = {}
        self.panes_closed = 0
        self.records = 0
        self.late = 0
        self.invalid = 0  # messages that were not log batches

    def _partition(self, partition: int) -> PartitionOperator:
        operator = self.partitions.get(partition)
        if operator is None:
            offsets = None if self._topic is None else InputOffsets(self._topic, partition, self._retention_ms)
            engine = RuleEngine(*self._rules, input_of=None if offsets is None else offsets.window)
            operator = self.partitions[partition] = PartitionOperator(
                engine, retention_ms=self._retention_ms, idle_producer_ms=self._idle_producer_ms, offsets=offsets)
        return operator

    def feed(self, partition: int, value: bytes | None, published_ms: int | None = None,
             offset: int | None = None) -> list[dict[str, Any]]:
        """One logs-topic message of `partition`, in offset order, with its Kafka timestamp; returns the alert events
        it gave. A message that is not a `LogBatch` is counted in `invalid` and skipped, as the worker skips it."""
        operator = self._partition(partition)
        return self._count(operator.feed_message(value, operator.applied_offset + 1 if offset is None else offset,
                                                 published_ms))

    def end(self) -> list[dict[str, Any]]:
        """The history read ends: every pane closes (as at the end of input)."""
        alerts = []
        for partition in sorted(self.partitions):
            alerts += self._count(self.partitions[partition].end())
        return alerts

    def _count(self, step: Step) -> list[dict[str, Any]]:
        self.invalid += step.invalid is not None
        self.records += step.records
        self.late += step.late
        self.panes_closed += len(step.closed)
        return step.alerts
