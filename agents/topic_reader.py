"""Reading a whole topic from the beginning. End offsets are only a lower bound (the embedded broker reports the
last batch's base offset + 1, which can be short of the end): read at least up to them, then until nothing new
has arrived for `idle_s`. A slow first fetch therefore never ends a read early."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError

from agents import kafka_clients
from agents.kafka_clients import PLAINTEXT
from agents.kafka_security import KafkaSecurity
from agents.topics import KafkaUnavailable, connect_admin


async def start_consumer(bootstrap: str, group_id: str | None = None, *,
                         security: KafkaSecurity = PLAINTEXT) -> AIOKafkaConsumer:
    """A started consumer (of no group, unless `group_id`: it then reads that group's committed offsets). An
    unreachable Kafka gives KafkaUnavailable after the retries every command makes (`cannot reach Kafka at …
    after N attempts`), not aiokafka's bootstrap error."""
    await (await connect_admin(bootstrap, security=security)).close()
    reader = kafka_clients.consumer(bootstrap=bootstrap, security=security, enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=group_id)
    try:
        await reader.start()
    except KafkaConnectionError as error:  # gone between the two connections
        await reader.stop()
        raise KafkaUnavailable(f"cannot reach Kafka at {bootstrap}: {error}") from error
    return reader


async def assign_whole_topic(consumer: AIOKafkaConsumer, topic: str, timeout_s: float) -> list[TopicPartition]:
    """Assign every partition of `topic` to a started `consumer`, at the beginning; waits up to `timeout_s` for
    the topic to exist (TimeoutError after)."""
    deadline = time.monotonic() + timeout_s
    partitions = consumer.partitions_for_topic(topic)
    while partitions is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} does not exist")
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await asyncio.sleep(0.1)
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return tps


async def reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Whether `consumer` has read every partition up to `ends` (its end offsets when the read began)."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def topic_messages(bootstrap: str, topic: str, idle_s: float = 1.0, follow: bool = False,
                         timeout_s: float = 60.0, from_end: bool = False,
                         on_ready: Callable[[], None] | None = None,
                         from_group: str | None = None, *,
                         security: KafkaSecurity = PLAINTEXT) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """`from_end` (with `follow`): skip the history, yield only messages published after the start. `on_ready` is
    called once the start positions are fixed: a message published after it is read. `from_group`: start each
    partition at that consumer group's committed offset, where it has one."""
    consumer = await start_consumer(bootstrap, from_group, security=security)
    try:
        tps = await assign_whole_topic(consumer, topic, timeout_s)
        if from_group is not None:
            for tp in tps:
                committed = await consumer.committed(tp)
                if committed is not None:
                    consumer.seek(tp, committed)
        if from_end:
            await consumer.seek_to_end(*tps)
        ends = {tp: await consumer.position(tp) for tp in tps} if from_end else dict(await consumer.end_offsets(tps))
        if on_ready is not None:
            on_ready()
        last = time.monotonic()
        while follow or time.monotonic() - last < idle_s or not await reached(consumer, ends):
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                for message in messages:
                    last = time.monotonic()
                    yield message
    finally:
        await consumer.stop()
