"""The metrics stream worker: a Faust app whose one agent consumes log batches and keeps per-partition panes.

Faust is the shell (consumer group, changelog-backed table, lifecycle); the work happens in `pipeline` on whole
batches, in one `PartitionOperator` per owned partition (the object `replay` drives too). Per message: skip it if
the partition's checkpoint already holds it, feed it to the operator, send the snapshots of the panes it closed
and its alert transitions, store each closed pane once in the table, checkpoint the operator's `snapshot()`.

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
import weakref
from typing import Any

import faust
import orjson
from faust.streams import _current_event
from faust.types import TP, EventT

from agents import kafka_clients
from agents.alert_silences import SilenceFeed
from agents.dashboard import attach_dashboard
from agents.faust_web import BUILT_IN_VIEWS_OFF
from agents.fetch_wait import keep_fetch_wait_short
from agents.malloc_trim import TRIM_EVERY_S, release_free_memory
from agents.worker_metrics import TailwatchMetrics
from agents.worker_state import PartitionContext, PartitionState, PromptTableManager, WorkerSettings, published_ms
from pipeline.log_batches import invalid_batch_letter
from pipeline.metrics import snapshot
from pipeline.pane_codec import closed_from_dict, closed_to_dict
from pipeline.partition_operator import PartitionOperator, Step
from pipeline.partitioning import group_key
from pipeline.rules.engine import RuleEngine
from pipeline.rules.input_offsets import InputOffsets

log = logging.getLogger("tailwatch.worker")

GAP_FILL_TIMEOUT_S = 30.0
DONE_CHECK_EVERY_S = 1.0
CATCH_UP_CHECK_EVERY_S = 1.0
CATCH_UP_AFTER_S = 3.0
# Messages (snapshots of about 15 kB, checkpoints, alerts) queued for the producer before the worker applies the next
# logs message: the worker can apply faster than Kafka takes its output, and an unbounded backlog is memory the
# allocator keeps after it drains (a soak measured 220 MB of Python heap at its peak with Faust's 10,000).
OUTPUT_BACKLOG_MESSAGES = 1_000
# RocksDB (--store rocksdb://, one database per partition): Faust's defaults allow 3 write buffers of 64 MB and a 2 GiB
# block cache per database. The table holds a checkpoint and an hour of closed panes per partition (a few MB), read
# whole only at a restore: 2 write buffers of 8 MB and a 16 MB cache per partition bound it.
ROCKSDB_OPTIONS = {"write_buffer_size": 8 << 20, "max_write_buffer_number": 2, "block_cache_size": 16 << 20}


def _checkpoint_key(partition: int) -> bytes:
    return f"{partition}/checkpoint".encode()


def _closed_key(partition: int, start: int) -> bytes:
    return f"{partition}/closed/{start}".encode()


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
            producer_max_batch_size=1 << 20,
            producer_max_request_size=4 << 20,
            producer_linger=0.005,
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
                                    options=dict(ROCKSDB_OPTIONS) if settings.store.startswith("rocksdb") else None)
        self.partitions: dict[int, PartitionState] = {}
        # shared by every partition's rules
        self.silence_feed = SilenceFeed(kafka.bootstrap, kafka.topic("silences"), security=kafka.security)
        self.silence_feed_task: asyncio.Future[None] | None = None
        # Snapshots and alerts of a whole batch of closed panes go out together: let Faust buffer them (its own
        # limit, which logs a warning each time it waits, is never reached: `_send_backlog_bounded` waits first).
        self.app.producer.buffer.max_messages = 10 * OUTPUT_BACKLOG_MESSAGES
        self.snapshots_sent = 0
        self.records_in = 0
        self.late = 0
        self.deleted_unread = 0  # logs-topic messages deleted by retention before they were applied
        self.telemetry = TailwatchMetrics()  # /metrics and /health (agents/health.py)
        self.app.agent(self.logs, name="panes")(self._agent)
        self.app.timer(DONE_CHECK_EVERY_S)(self._check_done)
        self.app.timer(CATCH_UP_CHECK_EVERY_S)(self._catch_up)
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
            await self.handle(event)
            self.telemetry.on_batch(time.perf_counter() - started)
            await self._send_backlog_bounded()

    async def _on_revoked(self, app: faust.App, revoked: set[TP], **_: Any) -> None:
        mine = sorted(tp.partition for tp in revoked if tp.topic == self.settings.kafka.logs_topic)
        log.info("partitions revoked", extra={"fields": {"partitions": mine}})
        for tp in revoked:
            if tp.topic == self.settings.kafka.logs_topic:
                state = self.partitions.pop(tp.partition, None)
                if state is not None:
                    state.unacked.clear()

    def _state(self, partition: int) -> PartitionState:
        state = self.partitions.get(partition)
        if state is None:
            settings = self.settings
            rules = settings.rules
            offsets = InputOffsets(settings.kafka.logs_topic, partition, settings.retention_ms)
            engine = RuleEngine(rules.compiled, rules.rule_file, rules.sha256, self.silence_feed.silences,
                                offsets.window)
            state = PartitionState(PartitionOperator(engine, retention_ms=settings.retention_ms,
                                                     idle_producer_ms=settings.idle_producer_ms, offsets=offsets))
            self._restore(partition, state)
            self.partitions[partition] = state
        return state

    def _restore(self, partition: int, state: PartitionState) -> None:
        raw = self.table.get(_checkpoint_key(partition))
        if raw is None:
            return
        prefix = f"{partition}/closed/".encode()
        closed = [(service, endpoint, int(key[len(prefix):]), closed_from_dict(pane))
                  for key, value in self.table.items() if key.startswith(prefix)
                  for service, endpoint, pane in orjson.loads(value)]
        operator = state.operator
        operator.restore(orjson.loads(raw), closed)
        state.checkpoint_offset = operator.applied_offset
        log.info("partition state restored", extra={"fields": {"partition": partition,
                                                               "offset": operator.applied_offset,
                                                               "open_panes": len(operator.store.open),
                                                               "closed_panes": len(closed)}})

    async def handle(self, event: EventT[bytes]) -> None:
        message = event.message
        state = self._state(message.partition)
        applied = state.operator.applied_offset
        if message.offset <= applied:  # delivered again after a restart: already in the state
            if message.offset > state.checkpoint_offset:
                state.unacked.append(event)  # not in a checkpoint yet: acked with the one that holds it
            else:
                event.ack()
            return
        if message.offset != applied + 1 and applied >= 0:
            await self._fill_gap(message.partition, state, message.offset)
            if message.offset != state.operator.applied_offset + 1:
                log.warning("offset gap", extra={"fields": {"partition": message.partition,
                                                            "offset": message.offset,
                                                            "applied": state.operator.applied_offset}})
        await self._apply(message.partition, state, message.offset, event.value, event,
                          published_ms(message.timestamp))

    async def _apply(self, partition: int, state: PartitionState, offset: int, value: bytes | None,
                     event: EventT[bytes] | None, published: int | None = None) -> None:
        step = state.operator.feed_message(value, offset, published)
        state.last_applied = time.monotonic()
        if event is not None:
            state.unacked.append(event)
        if step.invalid is not None:
            self._reject(partition, state, offset, value, step.invalid)
            return
        self.records_in += step.records
        self.late += step.late
        if step.closed:
            self._emit(partition, step)
        if self.done_logged and not state.operator.ended:
            self.done_logged = False  # a producer started again: "input fully processed" is told anew at its end
        # After alert transitions the checkpoint goes out with them, so a restart does not send them again.
        due = time.monotonic() - state.last_checkpoint >= self.settings.checkpoint_every_s
        if step.alerts or due or state.operator.ended:
            self._checkpoint(partition, state)
        if state.operator.ended:
            await self._maybe_done()

    def _reject(self, partition: int, state: PartitionState, offset: int, value: bytes | None, reason: str) -> None:
        """A message that is not a log batch costs only itself: dead-lettered with its reason, counted, skipped."""
        topic = self.settings.kafka.logs_topic
        self.invalid_batches += 1
        log.warning("invalid log batch", extra={"fields": {"partition": partition, "offset": offset,
                                                           "reason": reason}})
        self.deadletters.send_soon(key=f"kafka:{topic}/{partition}".encode(),
                                   value=orjson.dumps(invalid_batch_letter(topic, partition, offset, value, reason)))
        self._checkpoint(partition, state)  # rare: checkpointed at once, so a restart does not reject it again

    async def _fill_gap(self, partition: int, state: PartitionState, offset: int) -> None:
        """Messages between the state's last one and `offset` that Faust did not deliver: after a rebalance it can
        deliver a fetch made before it, past the offsets the restored checkpoint needs, and then drop those as
        already read (the group's committed offset can be past the checkpoint then, too). Read them with a
        consumer of our own and apply them in order; what retention deleted stays a gap (the caller logs it)."""
        from aiokafka import TopicPartition  # noqa: PLC0415 - rarely needed

        log.info("filling an offset gap", extra={"fields": {
            "partition": partition, "offset": offset, "next": state.operator.applied_offset + 1}})
        tp = TopicPartition(self.settings.kafka.logs_topic, partition)
        kafka = self.settings.kafka
        assert kafka.bootstrap
        consumer = kafka_clients.consumer(bootstrap=kafka.bootstrap, security=kafka.security, enable_auto_commit=False,
                                          auto_offset_reset="earliest", fetch_max_bytes=8 << 20,
                                          max_partition_fetch_bytes=8 << 20)
        await consumer.start()
        try:
            consumer.assign([tp])
            self._skip_deleted(partition, state, (await consumer.beginning_offsets([tp]))[tp])
            consumer.seek(tp, state.operator.applied_offset + 1)
            deadline = time.monotonic() + GAP_FILL_TIMEOUT_S
            while state.operator.applied_offset + 1 < offset and time.monotonic() < deadline:
                fetched = await consumer.getmany(tp, timeout_ms=500)
                for record in fetched.get(tp, []):
                    if record.offset >= offset:
                        return
                    if record.offset > state.operator.applied_offset:
                        await self._apply(partition, state, record.offset, record.value, None, record.timestamp)
                        await self._send_backlog_bounded()
                if not fetched and await consumer.position(tp) >= offset:
                    return
        finally:
            await consumer.stop()

    async def _send_backlog_bounded(self) -> None:
        """Back-pressure: wait while more than OUTPUT_BACKLOG_MESSAGES wait to be produced."""
        buffer = self.app.producer.buffer
        while buffer.size > OUTPUT_BACKLOG_MESSAGES and not self.app.should_stop:
            await buffer.flush_atmost(buffer.size - OUTPUT_BACKLOG_MESSAGES)

    def _skip_deleted(self, partition: int, state: PartitionState, first_kept: int) -> None:
        """Messages the state has not applied that the topic no longer holds (its retention deleted them while the
        worker was down or behind) can never be read: they are skipped, counted and logged, so the partition
        resumes at the log's first message and its lag can reach 0."""
        skipped = state.operator.skip_deleted(first_kept)
        if skipped:
            self.deleted_unread += skipped
            log.warning("messages deleted by the logs topic's retention before they were processed: skipped",
                        extra={"fields": {"partition": partition, "messages": skipped, "resumed_at": first_kept}})

    def _emit(self, partition: int, step: Step) -> None:
        """Send the snapshots and alert transitions; store the closed panes, one table key per (partition, pane
        start), and drop the keys of the panes the operator no longer holds."""
        by_start: dict[int, list[list[Any]]] = {}
        for pane in step.closed:
            key = group_key(pane.service, pane.endpoint).encode()
            self.metrics.send_soon(key=key, value=orjson.dumps(snapshot(pane)))
            by_start.setdefault(pane.start_ms, []).append([pane.service, pane.endpoint, closed_to_dict(pane.pane)])
        for start, panes in by_start.items():
            self.table[_closed_key(partition, start)] = orjson.dumps(panes)
        self.snapshots_sent += len(step.closed)
        self.telemetry.on_panes_closed(step.closed)
        for alert in step.alerts:
            self.alerts.send_soon(key=alert["fingerprint"].encode(), value=orjson.dumps(alert))
        self.alerts_sent += len(step.alerts)
        self.telemetry.on_alerts(step.alerts)
        for start in step.evicted_starts:
            self.table.pop(_closed_key(partition, start), None)

    async def _catch_up(self) -> None:
        """Messages past a partition's last applied one that Faust does not deliver: after a rebalance or a restart
        it can drop them as already read (its read or committed offset is past the checkpoint), and `handle` only
        notices the gap at the next message, which never comes at the end of the input. A partition behind its
        high watermark (from the consumer's last fetch) with nothing applied for `CATCH_UP_AFTER_S` reads the
        missing messages with a consumer of its own (`_fill_gap`)."""
        if self.app.rebalancing:
            return
        topic = self.settings.kafka.logs_topic
        now = time.monotonic()
        for partition, state in list(self.partitions.items()):
            if state.catching_up or now - state.last_applied < CATCH_UP_AFTER_S:
                continue
            try:
                highwater = self.app.consumer.highwater(TP(topic, partition))
            except Exception:  # noqa: S112 - not fetched yet, or no longer assigned
                continue
            if highwater is None or highwater <= state.operator.applied_offset + 1:
                continue
            state.catching_up = True
            context = PartitionContext(topic, partition)
            token = _current_event.set(weakref.ref(context))  # type: ignore[arg-type]
            try:
                await self._fill_gap(partition, state, highwater)
            finally:
                _current_event.reset(token)
                state.catching_up = False
                state.last_applied = time.monotonic()
            if self.partitions.get(partition) is state and state.operator.ended:
                await self._maybe_done()

    async def _release_free_memory(self) -> None:
        release_free_memory()  # agents/malloc_trim.py: what glibc holds free after a peak goes back to the system

    async def _check_done(self) -> None:
        """After a rebalance the partitions a worker keeps may all have finished already, and one it takes over
        may get no message again (its checkpoint holds the end of input): restore every assigned partition's
        state once the table is recovered, and decide again."""
        recovery: Any = self.app.tables.recovery  # type: ignore[attr-defined]
        if self.done_logged or self.app.rebalancing or not recovery.completed.is_set() or recovery.in_recovery:
            return
        topic = self.settings.kafka.logs_topic
        for tp in self.app.consumer.assignment():
            if tp.topic == topic:
                self._state(tp.partition)
        await self._maybe_done()

    async def _maybe_done(self) -> None:
        """Log "input fully processed" once every assigned partition's producers have all finished."""
        topic = self.settings.kafka.logs_topic
        mine = [tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic]
        if self.done_logged or not mine:
            return
        if all(p in self.partitions and self.partitions[p].operator.ended for p in mine):
            await self.app.producer.flush()
            self.done_logged = True
            log.info("input fully processed", extra={"fields": {
                "records": self.records_in, "late": self.late, "snapshots": self.snapshots_sent,
                "alerts": self.alerts_sent, "partitions": sorted(mine)}})

    async def checkpoint_on_stop(self) -> None:
        """On an orderly stop, before Faust stops the consumer and the table: no more messages for the agent, and a
        checkpoint of every partition holding messages not in one yet, which acknowledges them (Faust commits
        their offsets as it stops), so a restart resumes exactly here and sends nothing again. The state is whole
        between awaits (a message is applied and its outputs queued without one), so any moment will do."""
        self.app.consumer.stop_flow()
        topic = self.settings.kafka.logs_topic
        saved = {}
        for partition, state in list(self.partitions.items()):
            if state.operator.applied_offset > state.checkpoint_offset or state.unacked:
                context = PartitionContext(topic, partition)  # held: the table keeps only a weak reference
                token = _current_event.set(weakref.ref(context))  # type: ignore[arg-type]
                try:
                    self._checkpoint(partition, state)
                finally:
                    _current_event.reset(token)
                saved[str(partition)] = state.checkpoint_offset
        log.info("checkpointed on stop", extra={"fields": {"partitions": saved}})

    def _checkpoint(self, partition: int, state: PartitionState) -> None:
        operator = state.operator
        data = orjson.dumps(operator.snapshot())
        self.table[_checkpoint_key(partition)] = data
        state.checkpoint_bytes = len(data)
        state.checkpoint_offset = operator.applied_offset
        state.last_checkpoint = time.monotonic()
        for event in state.unacked:
            event.ack()
        state.unacked.clear()
