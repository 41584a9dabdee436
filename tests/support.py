"""Helpers for tests that read what tailwatch wrote to Kafka."""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer

from agents.settings import KafkaSettings
from agents.topic_reader import assign_whole_topic, reached
from schemas.deliveries import Delivery


@dataclass(frozen=True)
class Message:
    partition: int
    offset: int
    key: bytes | None
    value: dict  # {} for a tombstone (a compacted topic's deletion)


async def read_topic(bootstrap: str, topic: str, until: int | None = None, idle_s: float = 1.5,
                     timeout_s: float = 30.0) -> list[Message]:
    """Every message of `topic` from the beginning: stops once `until` messages arrived, or once it has read up
    to the end offsets it saw at the start (a lower bound on the embedded broker, exact on Kafka) and nothing more
    came for `idle_s`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = await assign_whole_topic(consumer, topic, timeout_s)
        ends = dict(await consumer.end_offsets(tps))
        deadline = time.monotonic() + timeout_s
        out: list[Message] = []
        last = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            got = 0
            for tp, messages in batch.items():
                for m in messages:
                    value = orjson.loads(m.value) if m.value is not None else {}
                    out.append(Message(tp.partition, m.offset, m.key, value))
                    got += 1
            now = time.monotonic()
            if got:
                last = now
            if until is not None and len(out) >= until:
                break
            if until is None and now - last > idle_s and await reached(consumer, ends):
                break
        return out
    finally:
        await consumer.stop()


def records_of_batches(messages: list[Message], partitions: int, max_records: int) -> list[dict]:
    """The records of the columnar LogBatch messages ingest writes, after checking each batch against the schema, its
    size limit, each record against `LogRecord`, and that every record sits in the partition Kafka's default
    partitioner gives its `service|endpoint`."""
    from aiokafka.partitioner import DefaultPartitioner

    from pipeline.columnar_batches import records_of_batch
    from schemas.envelopes import ColumnarLogBatch
    from schemas.record import LogRecord

    partitioner = DefaultPartitioner()
    every = list(range(partitions))
    records: list[dict] = []
    for message in messages:
        batch = ColumnarLogBatch.model_validate(message.value)
        assert batch.partition == message.partition
        rows = records_of_batch(message.value)
        assert len(rows) <= max_records
        for row in rows:
            record = LogRecord.model_validate(row)
            assert partitioner(f"{record.service}|{record.endpoint}".encode(), every, every) == message.partition
        records.extend(rows)
    return records


async def ledger_deliveries(settings: KafkaSettings) -> list[Delivery]:
    """Every delivery outcome written to the notifier's ledger topic (not its tombstones, alert states or read
    offsets), in the order written."""
    messages = await read_topic(settings.bootstrap or "", settings.topic("deliveries"))
    return [Delivery.model_validate(m.value) for m in messages
            if m.value and m.key is not None and not m.key.startswith((b"alert/", b"read/"))]
