"""The service stage of the stream worker (stage 2): one `ServiceOperator` per metrics partition.

The logs stage (`agents/stream_worker.py`) sends, per step, its closed endpoint panes and held alerts to their
service's metrics partition (`murmur2(service) % partitions`), then its progress to every metrics partition. This
stage reads the metrics topic with the same driver (`agents/partition_driver.py`: manual acks after a checkpoint,
re-delivered messages skipped, gaps filled) and sends what its operator decides: `ServicePaneSnapshot`s to
`<prefix>.metrics.service` (key service) and the service alerts and released held alerts to `<prefix>.alerts`.

State lives in its own table (`service-panes`, changelog `<app id>-service-panes-changelog`): per metrics
partition a checkpoint key and one key per (partition, pane start) with the service panes that closed then (the
windows the service rules read after a restart). A service snapshot sent after the last checkpoint is sent again,
identical, after a crash; consumers key them by (service, window_start). A value that is not a metrics-topic value
is dead-lettered (`invalid_metrics_value`, `source: kafka:<metrics topic>/<partition>`), counted and skipped.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import orjson
from faust.types import TP

from agents.partition_driver import PartitionDriver, PartitionState
from pipeline.metrics import encoded_digest
from pipeline.panes import ClosedPane
from pipeline.parsing import dead_letter
from pipeline.pieces import excerpt_of
from pipeline.rules.engine import RuleEngine
from pipeline.service import (
    ServiceOperator,
    ServiceStep,
    service_pane_from_dict,
    service_pane_to_dict,
    service_snapshot,
)

if TYPE_CHECKING:
    from agents.stream_worker import MetricsWorker

log = logging.getLogger("tailwatch.worker")

TABLE_NAME = "service-panes"
SENT_VALUES_MAX_BYTES = 8 << 20  # `SentValues`: values kept until read back (their panes about as much again)


def invalid_metrics_letter(topic: str, partition: int, offset: int, value: bytes | None,
                           reason: str) -> dict[str, Any]:
    """The dead letter of a metrics-topic value the service stage cannot use."""
    return dead_letter(f"kafka:{topic}/{partition}", None, offset, "invalid_metrics_value", reason,
                       excerpt_of(value or b""))


class SentValues:
    """The metrics-topic values this worker's logs stage sent to the metrics partitions its service stage holds,
    kept until the service stage reads them back, so that it takes them as they were made (`feed_sent`) instead of
    decoding its own bytes (JSON, the schema check and the digests from their dicts were about 60 % of the stage's
    cost). A value read is looked up by its partition and its exact bytes; one not found (another worker's, one
    sent before a restart, one forgotten) is decoded as before. Bound: `max_bytes` of values (their decoded panes
    about as much again); past it the oldest are forgotten."""

    def __init__(self, max_bytes: int = SENT_VALUES_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.values: OrderedDict[tuple[int, bytes], tuple[dict[str, Any], ClosedPane | None]] = OrderedDict()
        self.bytes = 0

    def add(self, partition: int, data: bytes, value: dict[str, Any], pane: ClosedPane | None) -> None:
        """`value` (with `pane` for an endpoint pane: see `ServiceOperator.feed_sent`) was sent as `data`."""
        key = (partition, data)
        if key in self.values:
            return
        self.values[key] = (value, pane)
        self.bytes += len(data)
        while self.bytes > self.max_bytes:
            (_partition, old), _ = self.values.popitem(last=False)
            self.bytes -= len(old)

    def take(self, partition: int, data: bytes) -> tuple[dict[str, Any], ClosedPane | None] | None:
        found = self.values.pop((partition, data), None)
        if found is not None:
            self.bytes -= len(data)
        return found

    def forget(self, partitions: list[int]) -> None:
        """The values sent to partitions this worker no longer holds: their next holder decodes them."""
        gone = set(partitions)
        for key in [key for key in self.values if key[0] in gone]:
            del self.values[key]
            self.bytes -= len(key[1])


class ServiceStage(PartitionDriver[ServiceOperator]):
    """Stage 2 of `worker`: reads `<prefix>.metrics`, writes `<prefix>.metrics.service` and `<prefix>.alerts`."""

    def __init__(self, worker: MetricsWorker) -> None:
        settings = worker.settings
        kafka = settings.kafka
        table = worker.app.Table(TABLE_NAME, partitions=kafka.partitions, key_type=bytes, value_type=bytes,
                                 options=worker.table_options())
        super().__init__(worker.app, kafka, kafka.topic("metrics"), table, settings.checkpoint_every_s)
        self.worker = worker
        self.snapshots = worker.app.topic(kafka.topic("metrics.service"), value_type=bytes, key_type=bytes,
                                          value_serializer="raw", key_serializer="raw", partitions=kafka.partitions)
        self.values_in = 0  # metrics-topic values applied (endpoint panes, held alerts, progress)
        self.panes_closed = 0  # service panes closed (and sent)
        self.late_endpoint_panes = 0
        self.duplicates = 0
        self.invalid = 0
        self.alerts_sent = 0
        self.sent = SentValues()
        self.values_read_back = 0  # values taken from `sent` instead of decoded
        self.held_partitions: set[int] = set()  # the metrics partitions assigned to this worker now
        worker.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]

    async def _on_assigned(self, sender: Any, assigned: set[TP], **_: Any) -> None:
        self.held_partitions = set(self.assigned())

    def holds(self, partition: int) -> bool:
        """`partition` of the metrics topic is assigned to this worker (its service stage will read it)."""
        return partition in self.held_partitions

    def revoke(self, revoked: set[TP]) -> list[int]:
        mine = super().revoke(revoked)
        self.held_partitions.difference_update(mine)
        self.sent.forget(mine)
        return mine

    def new_operator(self, partition: int) -> ServiceOperator:
        settings = self.worker.settings
        rules = settings.rules
        engine = RuleEngine(rules.compiled, rules.rule_file, rules.sha256, self.worker.silence_feed.silences,
                            stage="service")
        return ServiceOperator(engine, retention_ms=settings.retention_ms)

    def restore(self, partition: int, operator: ServiceOperator, checkpoint: dict[str, Any]) -> None:
        closed = [service_pane_from_dict(pane) for _start, value in self.closed_entries(partition)
                  for pane in orjson.loads(value)]
        operator.restore(checkpoint, closed)
        log.info("service partition state restored", extra={"fields": {
            "partition": partition, "offset": operator.applied_offset, "closed_panes": len(closed),
            "partitions_heard": operator.partitions_heard}})

    def ended(self, partition: int) -> bool:
        """Every logs partition has ended as far as this metrics partition has heard (nothing left to close)."""
        state = self.partitions.get(partition)
        if state is None:
            return False
        operator = state.operator
        count = operator.partitions
        return count is not None and all(operator.progress.get(p, (None, False))[1] for p in range(count))

    async def apply(self, partition: int, state: PartitionState[ServiceOperator], offset: int,
                    value: bytes | None, published: int | None) -> None:
        was_ended = self.ended(partition)
        sent = self.sent.take(partition, value) if value is not None else None
        if sent is not None:
            self.values_read_back += 1
            step = state.operator.feed_sent(*sent, offset)
        else:
            step = state.operator.feed_message(value, offset)
        if step.invalid is not None:
            self._reject(partition, state, offset, value, step.invalid)
            return
        self.values_in += 1
        self.late_endpoint_panes += step.late_endpoint_panes
        self.duplicates += step.duplicates
        if step.closed or step.alerts or step.evicted_starts:
            self._emit(partition, step)
        ended = self.ended(partition)
        if self.worker.done_logged and not ended:
            self.worker.done_logged = False  # new input: "input fully processed" is told anew at its end
        # After alerts the checkpoint goes out with them, so a restart does not send them again; at the end of the
        # input (not at every value while it stays ended: the next input's endpoint panes come before its progress,
        # and each checkpoint holds every open pane).
        if step.alerts or self.checkpoint_due(state) or (ended and (not was_ended or step.closed)):
            self.checkpoint(partition, state)
        if ended:
            await self.worker.maybe_done()

    async def after_catch_up(self, partition: int, state: PartitionState[ServiceOperator]) -> None:
        if self.ended(partition):
            await self.worker.maybe_done()

    def _reject(self, partition: int, state: PartitionState[ServiceOperator], offset: int, value: bytes | None,
                reason: str) -> None:
        """A value that is not a metrics-topic value costs only itself: dead-lettered, counted, skipped."""
        self.invalid += 1
        log.warning("invalid metrics value", extra={"fields": {"partition": partition, "offset": offset,
                                                               "reason": reason}})
        self.worker.deadletters.send_soon(
            key=f"kafka:{self.topic}/{partition}".encode(),
            value=orjson.dumps(invalid_metrics_letter(self.topic, partition, offset, value, reason)))
        self.checkpoint(partition, state)  # rare: checkpointed at once, so a restart does not reject it again

    def _emit(self, partition: int, step: ServiceStep) -> None:
        """Send the service snapshots (key service: Kafka's partitioner puts a service in the partition of the same
        number as on the metrics topic) and the alerts; store the closed service panes, one table key per
        (partition, pane start), and drop the keys of those the operator no longer holds."""
        by_start: dict[int, list[dict[str, Any]]] = {}
        for event in step.closed:
            self.snapshots.send_soon(key=event.service.encode(),
                                     value=orjson.dumps(service_snapshot(event, encoded_digest)))
            by_start.setdefault(event.start_ms, []).append(service_pane_to_dict(event))
        for start, panes in by_start.items():
            self.store(self.closed_key(partition, start), orjson.dumps(panes))
        self.panes_closed += len(step.closed)
        worker = self.worker
        for alert in step.alerts:
            worker.alerts.send_soon(key=alert["fingerprint"].encode(), value=orjson.dumps(alert))
        self.alerts_sent += len(step.alerts)
        worker.telemetry.on_alerts(step.alerts)
        for start in step.evicted_starts:
            self.drop_after_checkpoint(partition, self.closed_key(partition, start))
