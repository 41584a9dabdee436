"""The metrics stream worker: a Faust app with two stages. The logs stage (`PanesStage`, agent `panes`) consumes log
batches and keeps per-partition panes; the service stage (`agents/service_worker.py`, agent `service`) merges them
per service from the metrics topic.

Faust is the shell (consumer group, changelog-backed tables, lifecycle); the work happens in `pipeline` on whole
batches, in one `PartitionOperator` per owned partition (the object `replay` drives too), driven by
`agents/partition_driver.py`. Per message: skip it if the partition's checkpoint already holds it, feed it to the
operator, send what the step gives the metrics topic (`stage_messages`: the snapshots of the panes it closed and
held alerts to their service's partition, then its progress to every partition) and its alert transitions, store
each closed pane once in the table, checkpoint the operator's `snapshot()`.

Exactly-once state with at-least-once Kafka: events are acknowledged (so their offsets committed) only after a
checkpoint of the partition's open panes and clocks is written to the table, and every message at or below the
checkpoint's offset is skipped when it is delivered again after a restart. Snapshots are deterministic, so a
re-sent one (crash between send and checkpoint) is an exact duplicate; consumers key them by
(service, endpoint, window_start).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
import orjson
from faust.types import TP

from agents import kafka_clients
from agents.alert_silences import SilenceFeed
from agents.dashboard import attach_dashboard
from agents.faust_web import BUILT_IN_VIEWS_OFF
from agents.fetch_wait import keep_fetch_wait_short
from agents.lean_monitor import LeanMonitor
from agents.malloc_trim import TRIM_EVERY_S, release_free_memory
from agents.partition_driver import OUTPUT_BACKLOG_MESSAGES, PartitionDriver, PartitionState, send_backlog_bounded
from agents.service_worker import ServiceStage
from agents.settings import table_value_max_bytes
from agents.worker_metrics import TailwatchMetrics
from agents.worker_state import PromptTableManager, WorkerSettings
from pipeline.log_batches import invalid_batch_letter
from pipeline.pane_codec import closed_from_dict, closed_to_dict
from pipeline.partition_operator import PartitionOperator, Step
from pipeline.partitioning import group_key
from pipeline.rules.engine import RuleEngine
from pipeline.rules.input_offsets import InputOffsets
from pipeline.service import service_partition, stage_messages
from pipeline.service.store import pane_as_published

log = logging.getLogger("tailwatch.worker")

DONE_CHECK_EVERY_S = 1.0
# A logs partition's progress goes to the metrics partitions at most this often (`PanesStage._publish`): at once
# when it was not sent for that long (live: one change a minute, sent as it happens); while a backlog is read,
# the latest change waits for the next send, a checkpoint or the timer.
PROGRESS_EVERY_S = 0.2
# RocksDB (--store rocksdb://, one database per partition): Faust's defaults allow 3 write buffers of 64 MB and a 2 GiB
# block cache per database. The table holds a checkpoint and an hour of closed panes per partition (a few MB), read
# whole only at a restore: 2 write buffers of 8 MB and a 16 MB cache per partition bound it.
ROCKSDB_OPTIONS = {"write_buffer_size": 8 << 20, "max_write_buffer_number": 2, "block_cache_size": 16 << 20}


class MetricsWorker:
    """Builds the Faust app and holds the per-partition state the agent works on."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        kafka = settings.kafka
        assert kafka.bootstrap, "the worker needs a bootstrap address"
        self.app = faust.App(
            settings.app_id,
            **kafka_clients.faust_broker_settings(kafka.bootstrap, security=kafka.security,
                                                  create_topics=kafka.create_topics),
            store=settings.store,
            datadir=settings.data_dir,
            topic_partitions=kafka.partitions,
            topic_replication_factor=kafka.replication_factor,
            broker_session_timeout=settings.session_timeout_s,
            broker_heartbeat_interval=min(1.0, settings.session_timeout_s / 4),
            # The embedded broker answers the first JoinGroup after half the rebalance timeout.
            broker_rebalance_timeout=settings.session_timeout_s,
            TableManager=PromptTableManager,
            stream_recovery_delay=0.0,
            consumer_auto_offset_reset="earliest",
            table_standby_replicas=0,
            topic_disable_leader=True,
            web_enabled=settings.web_port is not None,
            web_port=settings.web_port or 6066,
            web_host="127.0.0.1",
            web_bind=settings.web_bind,
            **BUILT_IN_VIEWS_OFF,
            producer_acks=-1,
            stream_wait_empty=False,  # unacked events are simply delivered again after a restart
            consumer_max_fetch_size=8 << 20,
            # Snapshots are a few KB each: let many share one request instead of one round trip each.
            # Not above a table value's largest piece: a broker's message.max.bytes bounds a whole record batch.
            producer_max_batch_size=table_value_max_bytes(),
            producer_max_request_size=4 << 20,
            producer_linger=0.005,
            Monitor=LeanMonitor,
        )
        self.logs = self.app.topic(kafka.logs_topic, value_type=bytes, key_type=bytes,
                                   value_serializer="raw", key_serializer="raw", partitions=kafka.partitions)
        self.metrics = self.app.topic(kafka.topic("metrics"), value_type=bytes, key_type=bytes,
                                      value_serializer="raw", key_serializer="raw", partitions=kafka.partitions)
        self.alerts = self.app.topic(kafka.topic("alerts"), value_type=bytes, key_type=bytes,
                                     value_serializer="raw", key_serializer="raw", partitions=kafka.partitions)
        self.deadletters = self.app.topic(kafka.deadletter_topic, value_type=bytes, key_type=bytes,
                                          value_serializer="raw", key_serializer="raw", partitions=kafka.partitions)
        self.alerts_sent = 0
        self.invalid_batches = 0
        self.done_logged = False
        self.table = self.app.Table("panes", partitions=kafka.partitions, key_type=bytes, value_type=bytes,
                                    options=self.table_options())
        # shared by every partition's rules
        self.silence_feed = SilenceFeed(kafka.bootstrap, kafka.topic("silences"), security=kafka.security)
        self.silence_feed_task: asyncio.Future[None] | None = None
        # Snapshots and alerts of a whole batch of closed panes go out together: let Faust buffer them (its own
        # limit, which logs a warning each time it waits, is never reached: `send_backlog_bounded` waits first).
        self.app.producer.buffer.max_messages = 10 * OUTPUT_BACKLOG_MESSAGES
        self.snapshots_sent = 0
        self.records_in = 0
        self.late = 0
        self.telemetry = TailwatchMetrics()  # /metrics and /health (agents/health.py)
        self.app.agent(self.logs, name="panes")(self._agent)
        self.panes = PanesStage(self)
        self.service = ServiceStage(self)
        self.app.agent(self.metrics, name="service")(self._service_agent)
        self.app.timer(DONE_CHECK_EVERY_S)(self._check_done)
        self.app.timer(TRIM_EVERY_S)(self._release_free_memory)
        self.app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        keep_fetch_wait_short(self.app)
        self.dashboard = attach_dashboard(self.app, kafka)  # /dashboard when the web server is on

    async def _agent(self, stream: faust.StreamT[bytes]) -> None:
        if self.silence_feed_task is None:  # with the agent: Faust starts app tasks only after recovery, ~3 s later
            self.silence_feed_task = self.app.add_future(self.silence_feed.run())
        await self.silence_feed.wait_ready()  # the silences known at start-up mark the first transitions too
        manual_ack: Any = stream.noack()  # type: ignore[attr-defined]  # acked after their checkpoint
        async for event in manual_ack.events():
            started = time.perf_counter()
            await self.panes.handle(event)
            self.telemetry.on_batch(time.perf_counter() - started)
            await send_backlog_bounded(self.app)

    async def _service_agent(self, stream: faust.StreamT[bytes]) -> None:
        await self.silence_feed.wait_ready()  # the service rules read the silences too
        manual_ack: Any = stream.noack()  # type: ignore[attr-defined]  # acked after their checkpoint
        async for event in manual_ack.events():
            await self.service.handle(event)
            await send_backlog_bounded(self.app)

    async def _on_revoked(self, app: faust.App, revoked: set[TP], **_: Any) -> None:
        mine = self.panes.revoke(revoked)
        service = self.service.revoke(revoked)
        log.info("partitions revoked", extra={"fields": {"partitions": mine, "service_partitions": service}})

    def table_options(self) -> dict[str, int] | None:
        """Options of a stage's table: bounded RocksDB memory with `--store rocksdb://`."""
        return dict(ROCKSDB_OPTIONS) if self.settings.store.startswith("rocksdb") else None

    @property
    def deleted_unread(self) -> int:
        """Messages of either stage's input that retention deleted before they were applied (skipped)."""
        return self.panes.deleted_unread + self.service.deleted_unread

    async def _release_free_memory(self) -> None:
        release_free_memory()  # agents/malloc_trim.py: what glibc holds free after a peak goes back to the system

    @property
    def partitions(self) -> dict[int, PartitionState[PartitionOperator]]:
        """The logs partitions' states (health, /metrics, the stall watchdog read them)."""
        return self.panes.partitions

    async def _check_done(self) -> None:
        """After a rebalance the partitions a worker keeps may all have finished already, and one it takes over
        may get no message again (its checkpoint holds the end of input): restore every assigned partition's
        state once the table is recovered, and decide again."""
        recovery: Any = self.app.tables.recovery  # type: ignore[attr-defined]
        if self.done_logged or self.app.rebalancing or not recovery.completed.is_set() or recovery.in_recovery:
            return
        for stage in (self.panes, self.service):
            for partition in stage.assigned():
                stage.state(partition)
        await self.maybe_done()

    async def maybe_done(self) -> None:
        """Log "input fully processed" once every assigned logs partition's producers have all finished and every
        assigned metrics partition has heard that every logs partition ended (its service panes all closed)."""
        mine = self.panes.assigned()
        if self.done_logged or not mine:
            return
        logs_done = all(p in self.partitions and self.partitions[p].operator.ended for p in mine)
        if logs_done and all(self.service.ended(p) for p in self.service.assigned()):
            await self.app.producer.flush()
            if self.done_logged:  # the other stage's agent told it while this one flushed
                return
            self.done_logged = True
            log.info("input fully processed", extra={"fields": {
                "records": self.records_in, "late": self.late, "snapshots": self.snapshots_sent,
                "alerts": self.alerts_sent, "partitions": sorted(mine),
                "service_panes": self.service.panes_closed, "service_alerts": self.service.alerts_sent}})

    async def checkpoint_on_stop(self) -> None:
        """On an orderly stop, before Faust stops the consumer and the table: no more messages for the agent, and a
        checkpoint of every partition holding messages not in one yet, which acknowledges them (Faust commits
        their offsets as it stops), so a restart resumes exactly here and sends nothing again."""
        self.app.consumer.stop_flow()
        saved = self.panes.checkpoint_all()
        service = self.service.checkpoint_all()
        log.info("checkpointed on stop", extra={"fields": {"partitions": saved, "service_partitions": service}})


class PanesStage(PartitionDriver[PartitionOperator]):
    """The logs stage: one `PartitionOperator` per logs partition; its closed panes are kept in the table too, one
    key per (partition, pane start), for the windows the rules read after a restart."""

    def __init__(self, worker: MetricsWorker) -> None:
        settings = worker.settings
        super().__init__(worker.app, settings.kafka, settings.kafka.logs_topic, worker.table,
                         settings.checkpoint_every_s)
        self.worker = worker
        # per logs partition: its latest progress value (and its bytes), not sent yet
        self.progress_pending: dict[int, tuple[bytes, dict[str, Any]]] = {}
        self.progress_sent_at: dict[int, float] = {}  # per logs partition: when its progress was last sent
        self.progress_sends = 0  # progress values sent (each to every metrics partition)
        worker.app.timer(PROGRESS_EVERY_S)(self._send_due_progress)

    def new_operator(self, partition: int) -> PartitionOperator:
        settings = self.worker.settings
        rules = settings.rules
        offsets = InputOffsets(settings.kafka.logs_topic, partition, settings.retention_ms)
        engine = RuleEngine(rules.compiled, rules.rule_file, rules.sha256, self.worker.silence_feed.silences,
                            offsets.window)
        return PartitionOperator(engine, retention_ms=settings.retention_ms,
                                 idle_producer_ms=settings.idle_producer_ms, offsets=offsets)

    def restore(self, partition: int, operator: PartitionOperator, checkpoint: dict[str, Any]) -> None:
        closed = [(service, endpoint, start, closed_from_dict(pane))
                  for start, value in self.closed_entries(partition)
                  for service, endpoint, pane in orjson.loads(value)]
        operator.restore(checkpoint, closed)
        log.info("partition state restored", extra={"fields": {"partition": partition,
                                                               "offset": operator.applied_offset,
                                                               "open_panes": len(operator.store.open),
                                                               "closed_panes": len(closed)}})

    async def apply(self, partition: int, state: PartitionState[PartitionOperator], offset: int,
                    value: bytes | None, published: int | None) -> None:
        worker = self.worker
        operator = state.operator
        step = operator.feed_message(value, offset, published)
        if step.invalid is not None:
            self._reject(partition, state, offset, value, step.invalid)
            return
        worker.records_in += step.records
        worker.late += step.late
        if step.closed or step.progress is not None:
            self._emit(partition, step)
        if worker.done_logged and not operator.ended:
            worker.done_logged = False  # a producer started again: "input fully processed" is told anew at its end
        # After alert transitions (held ones too) the checkpoint goes out with them, so a restart does not send them
        # again.
        if step.alerts or step.held or self.checkpoint_due(state) or operator.ended:
            self.checkpoint(partition, state)
        if operator.ended:
            await worker.maybe_done()

    async def after_catch_up(self, partition: int, state: PartitionState[PartitionOperator]) -> None:
        if state.operator.ended:
            await self.worker.maybe_done()

    def _reject(self, partition: int, state: PartitionState[PartitionOperator], offset: int, value: bytes | None,
                reason: str) -> None:
        """A message that is not a log batch costs only itself: dead-lettered with its reason, counted, skipped."""
        worker = self.worker
        topic = self.topic
        worker.invalid_batches += 1
        log.warning("invalid log batch", extra={"fields": {"partition": partition, "offset": offset,
                                                           "reason": reason}})
        worker.deadletters.send_soon(key=f"kafka:{topic}/{partition}".encode(),
                                     value=orjson.dumps(invalid_batch_letter(topic, partition, offset, value, reason)))
        self.checkpoint(partition, state)  # rare: checkpointed at once, so a restart does not reject it again

    def _emit(self, partition: int, step: Step) -> None:
        """Send the step's metrics-topic values and alert transitions; store the closed panes, one table key per
        (partition, pane start), and drop the keys of the panes the operator no longer holds."""
        worker = self.worker
        self._publish(partition, step)
        by_start: dict[int, list[list[Any]]] = {}
        for pane in step.closed:
            by_start.setdefault(pane.start_ms, []).append([pane.service, pane.endpoint, closed_to_dict(pane.pane)])
        for start, panes in by_start.items():
            self.store(self.closed_key(partition, start), orjson.dumps(panes))
        worker.snapshots_sent += len(step.closed)
        worker.telemetry.on_panes_closed(step.closed)
        for alert in step.alerts:
            worker.alerts.send_soon(key=alert["fingerprint"].encode(), value=orjson.dumps(alert))
        worker.alerts_sent += len(step.alerts)
        worker.telemetry.on_alerts(step.alerts)
        for start in step.evicted_starts:
            self.drop_after_checkpoint(partition, self.closed_key(partition, start))

    def checkpoint(self, partition: int, state: PartitionState[PartitionOperator]) -> None:
        """A restored operator takes the progress of its checkpoint as sent: send it first."""
        self._send_progress(partition)
        super().checkpoint(partition, state)

    def revoke(self, revoked: set[TP]) -> list[int]:
        mine = super().revoke(revoked)
        for partition in mine:  # its next owner sends it again, from the checkpoint on
            self.progress_pending.pop(partition, None)
        return mine

    def _publish(self, partition: int, step: Step) -> None:
        """The step's `stage_messages` in their order: the endpoint snapshots (key `service|endpoint`) and held
        alerts (key service) each to its service's metrics partition, then the progress (key `progress/<logs
        partition>`) to every metrics partition — at once when the partition's last one went out at least
        `PROGRESS_EVERY_S` ago, else kept as pending (a later one replaces it). One producer keeps the order of its
        sends to one partition, so when the service stage reads a progress it has read every pane it covers; one
        sent later than its step covers no pane it does not have either. Reading a backlog, a progress a pane
        minute for each (logs partition × metrics partition) was most of the service stage's input (736 of its
        1,232 values in `bench live`)."""
        metrics = self.worker.metrics
        service_stage = self.worker.service
        count = self.kafka.partitions
        for i, (service, value) in enumerate(stage_messages(step, partition, count)):
            data = orjson.dumps(value)
            if service is None:
                self.progress_pending[partition] = (data, value)
                if time.monotonic() - self.progress_sent_at.get(partition, 0.0) >= PROGRESS_EVERY_S:
                    self._send_progress(partition)
                continue
            kind = value.get("kind")
            key = service if kind is not None else group_key(service, value["endpoint"])
            target = service_partition(service, count)
            if service_stage.holds(target):  # read back by this worker: taken as made, not decoded
                if kind is None:  # the first values are step.closed's snapshots, in order
                    service_stage.sent.add(target, data, {"service": service, "endpoint": value["endpoint"],
                                                          "window_start_ms": value["window_start_ms"]},
                                           pane_as_published(step.closed[i].pane))
                else:
                    service_stage.sent.add(target, data, value, None)
            metrics.send_soon(key=key.encode(), value=data, partition=target)

    def _send_progress(self, partition: int) -> None:
        """Send `partition`'s pending progress, if any, to every metrics partition."""
        pending = self.progress_pending.pop(partition, None)
        if pending is None:
            return
        data, value = pending
        metrics = self.worker.metrics
        service_stage = self.worker.service
        key = f"progress/{partition}".encode()
        for target in range(self.kafka.partitions):
            if service_stage.holds(target):
                service_stage.sent.add(target, data, value, None)
            metrics.send_soon(key=key, value=data, partition=target)
        self.progress_sent_at[partition] = time.monotonic()
        self.progress_sends += 1

    async def _send_due_progress(self) -> None:
        """The timer: send the progress a partition kept back while no later message came (the end of a backlog)."""
        now = time.monotonic()
        for partition in list(self.progress_pending):
            if now - self.progress_sent_at.get(partition, 0.0) >= PROGRESS_EVERY_S:
                self._send_progress(partition)
