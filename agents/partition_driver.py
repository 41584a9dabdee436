"""Driving one stateful operator per owned partition of one input topic from a Faust agent, exactly once.

Both stages of the stream worker use it: the logs stage (`agents/stream_worker.py`, one `PartitionOperator` per
logs partition) and the service stage (`agents/service_worker.py`, one `ServiceOperator` per metrics partition).
What a stage does with a message is its `apply` hook; what is the same for both lives here:

- events are read with manual acks and acknowledged only once a checkpoint (the operator's `snapshot()`, one table
  key per partition) holds them; a message at or below the applied offset is skipped when delivered again (and
  acknowledged with the checkpoint that holds it, when none holds it yet);
- a gap before a message (Faust can drop messages as already read after a rebalance) is filled with a consumer of
  our own before the message is applied; `catch_up` (a timer) does the same for a partition behind its high
  watermark with nothing applied for `CATCH_UP_AFTER_S`, since at the end of the input no next message comes;
- `revoke` drops the state of partitions a rebalance took away (restored from the table on their next message);
  `checkpoint_all` checkpoints every partition holding messages not in a checkpoint yet (an orderly stop).

Faust's table takes the changelog partition of a write from the current stream event, so writes outside the
agent's stream (catch-up, stop) run under a stand-in event of their partition (`PartitionContext`).
"""

from __future__ import annotations

import logging
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import faust
import orjson
from faust.streams import _current_event
from faust.types import TP, EventT

from agents import kafka_clients, table_values
from agents.settings import KafkaSettings, table_value_max_bytes
from agents.worker_state import PartitionContext, published_ms

log = logging.getLogger("tailwatch.worker")

GAP_FILL_TIMEOUT_S = 30.0
CATCH_UP_CHECK_EVERY_S = 1.0
CATCH_UP_AFTER_S = 3.0
# An idle partition whose consumer's last fetch says nothing is missing: its end offset is asked of the broker this
# often, since a fetcher that stopped fetching (seen after its offset fell below a log start retention had moved)
# also stops updating what it says.
END_OFFSETS_EVERY_S = 10.0
# Messages (snapshots of about 15 kB, checkpoints, alerts) queued for the producer before a stage applies the next
# message: the worker can apply faster than Kafka takes its output, and an unbounded backlog is memory the allocator
# keeps after it drains (a soak measured 220 MB of Python heap at its peak with Faust's 10,000).
OUTPUT_BACKLOG_MESSAGES = 1_000


async def send_backlog_bounded(app: faust.App) -> None:
    """Back-pressure: wait while more than OUTPUT_BACKLOG_MESSAGES wait to be produced."""
    buffer = app.producer.buffer
    while buffer.size > OUTPUT_BACKLOG_MESSAGES and not app.should_stop:
        await buffer.flush_atmost(buffer.size - OUTPUT_BACKLOG_MESSAGES)


def skip_deleted(operator: Operator, first_kept: int) -> int:
    """The log's messages before offset `first_kept` were deleted (retention) before `operator` applied them: the
    next message to apply is `first_kept`. Returns how many were skipped (0 when none were missed)."""
    skipped = max(0, first_kept - (operator.applied_offset + 1))
    if skipped:
        operator.applied_offset = first_kept - 1
    return skipped


class Operator(Protocol):
    """What the driver needs of an operator: the last offset it applied, and its state as JSON-ready data."""

    applied_offset: int

    def snapshot(self) -> dict[str, Any]: ...


Op = TypeVar("Op", bound=Operator)


@dataclass
class PartitionState(Generic[Op]):
    """A partition's operator and what the driver needs around it: acks and clocks."""

    operator: Op
    checkpoint_offset: int = -1  # the last message in the stored checkpoint
    checkpoint_bytes: int = 0  # the size of the stored checkpoint
    unacked: list[EventT[bytes]] = field(default_factory=list)
    drops: list[bytes] = field(default_factory=list)  # table keys to delete once the next checkpoint is stored
    last_checkpoint: float = field(default_factory=time.monotonic)
    last_applied: float = field(default_factory=time.monotonic)  # when a message was last applied
    catching_up: bool = False


def checkpoint_key(partition: int) -> bytes:
    return f"{partition}/checkpoint".encode()


@contextmanager
def partition_context(topic: str, partition: int) -> Iterator[None]:
    """Table writes outside Faust's stream go to `partition`'s changelog partition."""
    context = PartitionContext(topic, partition)  # held here: the table keeps only a weak reference
    token = _current_event.set(weakref.ref(context))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


class PartitionDriver(ABC, Generic[Op]):
    """One operator per owned partition of `topic`, checkpointed in `table` (key `<partition>/checkpoint`; a stage
    may keep further keys of its own there, prefixed `<partition>/`). Every value goes through `store`, which
    writes one of any size as changelog messages under the broker's limit."""

    def __init__(self, app: faust.App, kafka: KafkaSettings, topic: str, table: Any,
                 checkpoint_every_s: float) -> None:
        self.app = app
        self.kafka = kafka
        self.topic = topic
        self.table = table
        self.checkpoint_every_s = checkpoint_every_s
        self.table_value_max_bytes = table_value_max_bytes()
        self.partitions: dict[int, PartitionState[Op]] = {}
        self.deleted_unread = 0  # messages the topic's retention deleted before they were applied (skipped)
        self._ends_asked = 0.0  # when the broker was last asked for the idle partitions' end offsets
        app.timer(CATCH_UP_CHECK_EVERY_S)(self.catch_up)

    # -- the stage's hooks

    @abstractmethod
    def new_operator(self, partition: int) -> Op:
        """A fresh operator for `partition`."""

    @abstractmethod
    def restore(self, partition: int, operator: Op, checkpoint: dict[str, Any]) -> None:
        """`operator` (just built) from its checkpoint and whatever else the stage keeps in the table."""

    @abstractmethod
    async def apply(self, partition: int, state: PartitionState[Op], offset: int, value: bytes | None,
                    published: int | None) -> None:
        """Feed one message (in offset order) to the operator and send what it decided; call `checkpoint` when
        due (`checkpoint_due`) or when outputs must not be sent again after a restart."""

    async def after_catch_up(self, partition: int, state: PartitionState[Op]) -> None:
        """Called after the catch-up timer applied missing messages of `partition`."""

    # -- the shared driving

    def state(self, partition: int) -> PartitionState[Op]:
        state = self.partitions.get(partition)
        if state is None:
            state = PartitionState(self.new_operator(partition))
            try:
                raw = table_values.get(self.table, checkpoint_key(partition))
            except table_values.TableValueError as error:  # rare (see agents/table_values.py): not a crash loop
                log.error("checkpoint unreadable: the partition starts afresh at the group's committed offset",
                          extra={"fields": {"topic": self.topic, "partition": partition, "reason": str(error)}})
                raw = None
            if raw is not None:
                self.restore(partition, state.operator, orjson.loads(raw))
                state.checkpoint_offset = state.operator.applied_offset
            self.partitions[partition] = state
        return state

    def closed_entries(self, partition: int) -> Iterator[tuple[int, bytes]]:
        """The stage's `<partition>/closed/<start>` keys in the table: (start, value)."""
        prefix = f"{partition}/closed/".encode()
        for key, value in table_values.items_with_prefix(self.table, prefix):
            yield int(key[len(prefix):]), value

    def store(self, key: bytes, data: bytes) -> None:
        """Write a table value of any size (`agents/table_values.py`: large ones go as pieces)."""
        table_values.put(self.table, key, data, self.table_value_max_bytes)

    def drop_after_checkpoint(self, partition: int, key: bytes) -> None:
        """Delete a table key the operator no longer needs — once the next checkpoint is stored: a restore from the
        checkpoint before it (after a crash or a rebalance) may still need the key."""
        state = self.partitions.get(partition)
        if state is not None:
            state.drops.append(key)

    def closed_key(self, partition: int, start: int) -> bytes:
        return f"{partition}/closed/{start}".encode()

    async def handle(self, event: EventT[bytes]) -> None:
        message = event.message
        state = self.state(message.partition)
        applied = state.operator.applied_offset
        if message.offset <= applied:  # delivered again after a restart: already in the state
            if message.offset > state.checkpoint_offset:
                state.unacked.append(event)  # not in a checkpoint yet: acked with the one that holds it
            else:
                event.ack()
            return
        if message.offset != applied + 1 and applied >= 0:
            await self.fill_gap(message.partition, state, message.offset)
            if message.offset != state.operator.applied_offset + 1:
                log.warning("offset gap", extra={"fields": {"topic": self.topic, "partition": message.partition,
                                                            "offset": message.offset,
                                                            "applied": state.operator.applied_offset}})
        await self._apply(message.partition, state, message.offset, event.value, event,
                          published_ms(message.timestamp))

    async def _apply(self, partition: int, state: PartitionState[Op], offset: int, value: bytes | None,
                     event: EventT[bytes] | None, published: int | None) -> None:
        if event is not None:
            state.unacked.append(event)
        await self.apply(partition, state, offset, value, published)
        state.last_applied = time.monotonic()

    def checkpoint_due(self, state: PartitionState[Op]) -> bool:
        return time.monotonic() - state.last_checkpoint >= self.checkpoint_every_s

    def checkpoint(self, partition: int, state: PartitionState[Op]) -> None:
        """Store the operator's snapshot and acknowledge the events it holds."""
        operator = state.operator
        data = orjson.dumps(operator.snapshot())
        self.store(checkpoint_key(partition), data)
        for key in state.drops:
            table_values.pop(self.table, key)
        state.drops.clear()
        state.checkpoint_bytes = len(data)
        state.checkpoint_offset = operator.applied_offset
        state.last_checkpoint = time.monotonic()
        for event in state.unacked:
            event.ack()
        state.unacked.clear()

    async def fill_gap(self, partition: int, state: PartitionState[Op], offset: int) -> None:
        """Messages between the state's last one and `offset` that Faust did not deliver: after a rebalance it can
        deliver a fetch made before it, past the offsets the restored checkpoint needs, and then drop those as
        already read (the group's committed offset can be past the checkpoint then, too). Read them with a
        consumer of our own and apply them in order; what retention deleted stays a gap (the caller logs it)."""
        from aiokafka import TopicPartition  # noqa: PLC0415 - rarely needed

        log.info("filling an offset gap", extra={"fields": {
            "topic": self.topic, "partition": partition, "offset": offset,
            "next": state.operator.applied_offset + 1}})
        tp = TopicPartition(self.topic, partition)
        kafka = self.kafka
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
                        await send_backlog_bounded(self.app)
                if not fetched and await consumer.position(tp) >= offset:
                    return
        finally:
            await consumer.stop()

    def _skip_deleted(self, partition: int, state: PartitionState[Op], first_kept: int) -> None:
        """Messages the state has not applied that the topic no longer holds (its retention deleted them while the
        worker was down or behind) can never be read: they are skipped, counted and logged, so the partition
        resumes at the log's first message and its lag can reach 0."""
        skipped = skip_deleted(state.operator, first_kept)
        if skipped:
            self.deleted_unread += skipped
            log.warning("messages deleted by the topic's retention before they were processed: skipped",
                        extra={"fields": {"topic": self.topic, "partition": partition, "messages": skipped,
                                          "resumed_at": first_kept}})

    async def catch_up(self) -> None:
        """Messages past a partition's last applied one that Faust does not deliver: after a rebalance or a restart
        it can drop them as already read (its read or committed offset is past the checkpoint), and `handle` only
        notices the gap at the next message, which never comes at the end of the input. A partition behind its
        high watermark (from the consumer's last fetch) with nothing applied for `CATCH_UP_AFTER_S` reads the
        missing messages with a consumer of its own (`fill_gap`)."""
        if self.app.rebalancing:
            return
        now = time.monotonic()
        idle = {partition: state for partition, state in list(self.partitions.items())
                if not state.catching_up and now - state.last_applied >= CATCH_UP_AFTER_S}
        ends = await self._ends(idle, now)
        for partition, state in idle.items():
            highwater = ends.get(partition)
            if highwater is None or highwater <= state.operator.applied_offset + 1:
                continue
            state.catching_up = True
            try:
                with partition_context(self.topic, partition):
                    await self.fill_gap(partition, state, highwater)
            finally:
                state.catching_up = False
                state.last_applied = time.monotonic()
            if self.partitions.get(partition) is state:
                await self.after_catch_up(partition, state)
        self._checkpoint_idle(idle)

    def _checkpoint_idle(self, idle: dict[int, PartitionState[Op]]) -> None:
        """A partition idle for `CATCH_UP_AFTER_S` with messages not in a checkpoint gets one: what it holds once its
        input stops is stored and acknowledged then, not at its next message (which may be hours away), so a
        restart re-reads nothing it had finished. Not while a rebalance or a stop is under way (the catch-up may
        have waited that long): the partition may be on its way to another worker."""
        if self.app.rebalancing or self.app.should_stop:
            return
        for partition, state in idle.items():
            if self.partitions.get(partition) is state and (
                    state.operator.applied_offset > state.checkpoint_offset or state.unacked):
                with partition_context(self.topic, partition):
                    self.checkpoint(partition, state)

    async def _ends(self, idle: dict[int, PartitionState[Op]], now: float) -> dict[int, int]:
        """The idle partitions' end offsets: from the consumer's last fetch, and every END_OFFSETS_EVERY_S from the
        broker for those the fetch says are complete."""
        ends: dict[int, int] = {}
        for partition in idle:
            try:
                highwater = self.app.consumer.highwater(TP(self.topic, partition))
            except Exception:  # noqa: S112 - not fetched yet, or no longer assigned
                continue
            if highwater is not None:
                ends[partition] = highwater
        complete = [p for p, state in idle.items() if ends.get(p, 0) <= state.operator.applied_offset + 1]
        if complete and now - self._ends_asked >= END_OFFSETS_EVERY_S:
            self._ends_asked = now
            try:
                asked = await self.app.consumer.highwaters(*(TP(self.topic, p) for p in complete))
            except Exception:  # the broker is away or the partitions moved: asked again later
                return ends
            for tp, end in asked.items():
                if end is not None and tp.partition in idle:
                    ends[tp.partition] = max(end, ends.get(tp.partition, 0))
        return ends

    def revoke(self, revoked: set[TP]) -> list[int]:
        """Drop the state of the partitions of `topic` a rebalance took away; returns them."""
        mine = sorted(tp.partition for tp in revoked if tp.topic == self.topic)
        for partition in mine:
            state = self.partitions.pop(partition, None)
            if state is not None:
                state.unacked.clear()
        return mine

    def assigned(self) -> list[int]:
        """The partitions of `topic` assigned to this worker now."""
        return sorted(tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.topic)

    def checkpoint_all(self) -> dict[str, int]:
        """Checkpoint every partition holding messages not in a checkpoint yet (an orderly stop); returns their
        checkpointed offsets. The state is whole between awaits, so any moment will do."""
        saved = {}
        for partition, state in list(self.partitions.items()):
            if state.operator.applied_offset > state.checkpoint_offset or state.unacked:
                with partition_context(self.topic, partition):
                    self.checkpoint(partition, state)
                saved[str(partition)] = state.checkpoint_offset
        return saved
