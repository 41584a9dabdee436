"""Backtest over the logs topic's history: one `PartitionOperator` per partition — the object the live stream
worker drives — fed the messages read back from the topic (in offset order, with their publish times) instead of
a consumer group's. Records keep the watermarks ingest stamped on them, so lateness is decided as it was live,
and the alert events are the ones the worker gave (with the live provenance, the input offsets, as well).

What each partition's step sends to the metrics topic (`stage_messages`) goes, in the order read, to one
`ServiceOperator` — the live service stage's object. Its decisions depend only on each partition's own sequence,
not on how the partitions interleave, so one operator here decides what the live metrics partitions' operators
decided: the service panes, the service alerts and the held endpoint alerts with their `inhibited_by`.
"""

from __future__ import annotations

from typing import Any

from pipeline.pane_store import DEFAULT_RETENTION_MS
from pipeline.partition_operator import PartitionOperator, Step
from pipeline.rules.compiled import CompiledRule
from pipeline.rules.engine import RuleEngine
from pipeline.rules.input_offsets import InputOffsets
from pipeline.rules.silences import SilenceSet
from pipeline.service import ServiceOperator, ServiceStep
from pipeline.watermarks import DEFAULT_IDLE_PRODUCER_MS
from schemas.rules import RuleFile


class LogTopicBacktest:
    def __init__(self, rules: list[CompiledRule], rule_file: RuleFile, rules_hash: str,
                 silences: SilenceSet | None = None, retention_ms: int = DEFAULT_RETENTION_MS,
                 idle_producer_ms: int = DEFAULT_IDLE_PRODUCER_MS, topic: str | None = None,
                 partitions: int | None = None) -> None:
        """`topic`: the logs topic's name, for the alerts' provenance (None leaves it out). `partitions`: how many
        the topic has (or `set_partitions` before the first message; default: one more than the highest fed)."""
        self._rules = (rules, rule_file, rules_hash, silences)
        self._idle_producer_ms = idle_producer_ms
        self._retention_ms = retention_ms
        self._topic = topic
        self.logs_partitions = partitions
        self.partitions: dict[int, PartitionOperator] = {}
        self.service = ServiceOperator(RuleEngine(rules, rule_file, rules_hash, silences, stage="service"),
                                       retention_ms=retention_ms)
        self.panes_closed = 0
        self.service_panes_closed = 0
        self.late_endpoint_panes = 0
        self.records = 0
        self.late = 0
        self.invalid = 0  # messages that were not log batches

    def set_partitions(self, partitions: int) -> None:
        self.logs_partitions = partitions

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
        it gave (both stages'). A message that is not a `LogBatch` is counted in `invalid` and skipped, as the
        worker skips it."""
        operator = self._partition(partition)
        step = operator.feed_message(value, operator.applied_offset + 1 if offset is None else offset, published_ms)
        return self._count(partition, step)

    def end(self) -> list[dict[str, Any]]:
        """The history read ends: every pane closes (as at the end of input), then every service pane."""
        alerts = []
        for partition in sorted(self.partitions):
            alerts += self._count(partition, self.partitions[partition].end())
        return alerts + self._count_service(self.service.end())

    def _count(self, partition: int, step: Step) -> list[dict[str, Any]]:
        self.invalid += step.invalid is not None
        self.records += step.records
        self.late += step.late
        self.panes_closed += len(step.closed)
        count = self.logs_partitions if self.logs_partitions is not None else max(self.partitions) + 1
        service = self.service.feed_step(step, partition, count)
        return step.alerts + self._count_service(service)

    def _count_service(self, step: ServiceStep) -> list[dict[str, Any]]:
        self.service_panes_closed += len(step.closed)
        self.late_endpoint_panes += step.late_endpoint_panes
        return step.alerts
