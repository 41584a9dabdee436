"""Reading the logs topic's history for `tailwatch replay --topic`: every partition from the offset of `since`
(found with ListOffsets by timestamp, aiokafka's `offsets_for_times`) or from the beginning, up to the first
message at or after `until`, else until nothing new arrives for `idle_s` (end offsets are not trusted: the
embedded broker reports them wrong). Times are the messages' Kafka timestamps: when ingest published them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from aiokafka import ConsumerRecord, TopicPartition

from agents.kafka_clients import PLAINTEXT
from agents.kafka_security import KafkaSecurity
from agents.topic_reader import assign_whole_topic, start_consumer


async def history(bootstrap: str, topic: str, since_ms: int | None = None, until_ms: int | None = None,
                  idle_s: float = 2.0, timeout_s: float = 30.0, *,
                  security: KafkaSecurity = PLAINTEXT,
                  on_assigned: Callable[[int], None] | None = None) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """The messages of `topic` in `[since_ms, until_ms)`, each partition in offset order. `on_assigned`: told how
    many partitions the topic has, before the first message."""
    consumer = await start_consumer(bootstrap, security=security)
    try:
        tps = await assign_whole_topic(consumer, topic, timeout_s)
        if on_assigned is not None:
            on_assigned(len(tps))
        done: set[TopicPartition] = set()
        if since_ms is not None:
            starts = await consumer.offsets_for_times({tp: since_ms for tp in tps})
            for tp, found in starts.items():
                # nothing at or after `since` in this partition (the embedded broker answers offset 0 with
                # timestamp -1 then, where Kafka answers offset -1)
                if found is None or found.timestamp < 0:
                    done.add(tp)
                else:
                    consumer.seek(tp, found.offset)
        if done:
            consumer.pause(*done)
        last = time.monotonic()
        while len(done) < len(tps) and time.monotonic() - last < idle_s:
            batch = await consumer.getmany(timeout_ms=200)
            for tp, messages in batch.items():
                for message in messages:
                    last = time.monotonic()
                    if tp in done:
                        break
                    if since_ms is not None and message.timestamp < since_ms:
                        continue  # before `since` (a broker that found the offset loosely)
                    if until_ms is not None and message.timestamp >= until_ms:
                        done.add(tp)
                        consumer.pause(tp)
                        break
                    yield message
    finally:
        await consumer.stop()
