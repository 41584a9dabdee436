"""The deliveries ledger on Kafka: the compacted `<prefix>.deliveries` topic (what it holds and why it stays
bounded: pipeline/notify/ledger_state.py).

Reading: from the ledger's checkpoint — the committed offsets of the consumer group `<topic>.reader` — until
nothing new arrives for a moment (end offsets are not trusted: the embedded broker reports them wrong). The writer
moves that checkpoint itself: once it has written more than twice the live records since the last one (and at
least `RESTATE_AFTER`), it writes every live record again and commits the offsets where that copy starts. So a
start-up reads at most the live records and what came after the last copy, however long the history is — also on
a broker that never compacts (the embedded Tansu). On Apache Kafka, compaction also frees the dead records' disk.

Writing: every write is retried until it lands (each attempt bounded, backoff doubling up to `MAX_BACKOFF_S`),
or until the notifier stops; writes go out one after the other, so a key's records land in the order written.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from agents import kafka_clients
from agents.kafka_clients import PLAINTEXT
from agents.kafka_security import KafkaSecurity
from agents.topic_reader import topic_messages
from pipeline.notify.ledger_state import LedgerState, Write
from schemas.deliveries import NotificationDeadLetter

log = logging.getLogger("tailwatch.notify")

RESTATE_AFTER = 10_000  # records written before the first restatement is considered
ATTEMPT_TIMEOUT_S = 10.0
FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0


def checkpoint_group(topic: str) -> str:
    return f"{topic}.reader"


def ledger_partition(key: bytes, partitions: int) -> int:
    """The ledger topic's partition for a key: the same key always lands in the same partition (what compaction
    needs), and crc32 costs far less than the default partitioner's pure-Python murmur2."""
    return zlib.crc32(key) % partitions


async def read_ledger(bootstrap: str, topic: str, idle_s: float = 1.0, *,
                      security: KafkaSecurity = PLAINTEXT) -> LedgerState:
    state = LedgerState()
    async for message in topic_messages(bootstrap, topic, idle_s=idle_s, from_group=checkpoint_group(topic),
                                        security=security):
        state.load(message.key.decode() if message.key else "", message.value)
        state.ends[message.partition] = message.offset + 1
    return state


class LedgerWriter:
    def __init__(self, bootstrap: str, deliveries_topic: str, deadletter_topic: str, state: LedgerState,
                 attempt_timeout_s: float = ATTEMPT_TIMEOUT_S, *, security: KafkaSecurity = PLAINTEXT) -> None:
        self.security = security
        self.deliveries_topic = deliveries_topic
        self.deadletter_topic = deadletter_topic
        self.bootstrap = bootstrap
        self.state = state
        self.attempt_timeout_s = attempt_timeout_s
        self.failures = 0  # failed attempts (each retried)
        self.restatements = 0
        self._since_restatement = 0
        self._lock = asyncio.Lock()
        self._producer: AIOKafkaProducer | None = None
        self._committer: AIOKafkaConsumer | None = None  # commits the checkpoint (never fetches)
        self.partitions = 1  # of the ledger topic, known once started

    async def start(self) -> None:
        self._producer = kafka_clients.producer(self.bootstrap, security=self.security, client_id="tailwatch-notify",
                                                acks="all", request_timeout_ms=int(self.attempt_timeout_s * 1000),
                                                retry_backoff_ms=200, linger_ms=2, max_batch_size=1 << 20)
        await self._producer.start()
        self.partitions = len(await self._producer.partitions_for(self.deliveries_topic))

    async def stop(self) -> None:
        if self._committer is not None:
            await self._committer.stop()
        if self._producer is not None:
            await self._producer.stop()

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("ledger writer not started")
        return self._producer

    async def write(self, *steps: list[Write]) -> None:
        """Write each step's records, each step landed before the next; returns once all have landed."""
        async with self._lock:
            for step in steps:
                if step:
                    await self._land(self.deliveries_topic, step)
                    self._since_restatement += len(step)
            if self.restatement_due(0):
                await self._restate()

    def restatement_due(self, written: int) -> bool:
        """Whether the ledger should be restated, after `written` more records (by this writer or another)."""
        self._since_restatement += written
        return self._since_restatement > max(RESTATE_AFTER, 2 * self.state.held)

    async def restate(self) -> None:
        async with self._lock:
            await self._restate()

    async def dead_letter(self, letter: NotificationDeadLetter) -> None:
        async with self._lock:
            await self._land(self.deadletter_topic, [(letter.key or "invalid",
                                                      orjson.dumps(letter.model_dump(mode="json")))])

    async def _restate(self) -> None:
        """Write every live record again, then make the checkpoint point at the start of that copy."""
        started = time.monotonic()
        live = self.state.live()
        starts = dict(self.state.ends)  # partitions the copy does not touch start at their end
        for partition, offset in (await self._land(self.deliveries_topic, live)).items():
            starts[partition] = offset
        await self._commit(starts)
        self._since_restatement = 0
        self.restatements += 1
        log.info("deliveries ledger restated", extra={"fields": {
            "records": len(live), "seconds": round(time.monotonic() - started, 3)}})

    async def _commit(self, offsets: dict[int, int]) -> None:
        attempt = 0
        tps = {TopicPartition(self.deliveries_topic, p): o for p, o in offsets.items()}
        while True:
            attempt += 1
            try:
                await asyncio.wait_for(self._commit_once(tps), self.attempt_timeout_s)
                return
            except (KafkaError, TimeoutError, OSError) as error:
                committer, self._committer = self._committer, None
                if committer is not None:
                    await committer.stop()
                await self._failed("ledger checkpoint", attempt, error)

    async def _commit_once(self, tps: dict[TopicPartition, int]) -> None:
        if self._committer is None:
            self._committer = kafka_clients.consumer(bootstrap=self.bootstrap, security=self.security,
                                                     enable_auto_commit=False,
                                                     group_id=checkpoint_group(self.deliveries_topic))
            await self._committer.start()
        self._committer.assign(list(tps))
        await self._committer.commit(tps)

    async def _land(self, topic: str, writes: list[Write]) -> dict[int, int]:
        """Send until every record has landed; the first offset written per partition."""
        attempt = 0
        while True:
            attempt += 1
            try:
                firsts = await asyncio.wait_for(self._send(topic, writes), self.attempt_timeout_s)
                return firsts
            except (KafkaError, TimeoutError, OSError) as error:
                await self._failed(topic, attempt, error)

    async def _send(self, topic: str, writes: list[Write]) -> dict[int, int]:
        ledger = topic == self.deliveries_topic
        futures = [await self.producer.send(topic, key=key.encode(), value=value, partition=ledger_partition(
            key.encode(), self.partitions) if ledger else None) for key, value in writes]
        firsts: dict[int, int] = {}
        for future in futures:
            meta = await future
            firsts.setdefault(meta.partition, meta.offset)
            if ledger:
                self.state.ends[meta.partition] = max(self.state.ends.get(meta.partition, 0), meta.offset + 1)
        return firsts

    async def _failed(self, what: str, attempt: int, error: BaseException) -> None:
        self.failures += 1
        pause = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (attempt - 1))
        log.warning("ledger write failed; retrying", extra={"fields": {
            "topic": what, "attempt": attempt, "error": f"{type(error).__name__}: {error}"[:300],
            "retry_in_s": pause}})
        await asyncio.sleep(pause)
