"""tailwatch on a real Apache Kafka broker (deploy/kafka): topic creation, idempotent ingest with exact end
offsets (which the embedded Tansu broker gets wrong), and topic data that survives a broker restart."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from agents.ingest import IngestConfig, Ingestor
from agents.publisher import Publisher
from agents.sources import file_chunks
from agents.topics import TopicSpec, ensure_topics, is_embedded_broker
from pipeline.batching import DEFAULT_LATENESS_MS
from pipeline.columnar_batches import records_of_batch
from pipeline.parsing import LogParser
from tests.kafka_tier import ApacheKafka
from tests.support import Message, read_topic, records_of_batches

pytestmark = pytest.mark.kafka

PARTITIONS = 4


def canon(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def topic_names() -> tuple[str, str]:
    prefix = f"ak{uuid.uuid4().hex[:10]}"
    return f"{prefix}.logs", f"{prefix}.deadletter"


def expected_records(capture: Path) -> list[dict[str, Any]]:
    """What ingest publishes for `capture`: the parsed records, each stamped with the running watermark."""
    parser = LogParser("x")
    records = parser.feed(capture.read_bytes()).records + parser.finish().records
    top = None
    for record in records:
        top = record["event_time_ms"] if top is None else max(top, record["event_time_ms"])
        record["watermark_ms"] = top - DEFAULT_LATENESS_MS
    return records


async def end_offsets(bootstrap: str, topic: str, timeout_s: float = 30.0) -> dict[int, int]:
    """Log end offset per partition, as the broker reports it (ListOffsets latest)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        partitions = None
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await asyncio.sleep(0.1)
        assert partitions, f"topic {topic} not found"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        beginning = await consumer.beginning_offsets(tps)
        assert set(beginning.values()) == {0}
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def ingest_sample(bootstrap: str, sample: Path, logs: str, deadletter: str) -> Publisher:
    """Create the topics and ingest the sample with the idempotent producer, 3 records per message at most."""
    created = await ensure_topics(bootstrap, [TopicSpec(logs, PARTITIONS), TopicSpec(deadletter, PARTITIONS)])
    assert sorted(created) == sorted([logs, deadletter])
    publisher = Publisher(bootstrap, logs, deadletter, idempotent=True)
    await publisher.start()  # raises if the broker refuses InitProducerId
    assert publisher.idempotent is True
    ingestor = Ingestor(publisher, PARTITIONS, IngestConfig(batch_records=3))
    stats = await ingestor.ingest_chunks(str(sample), file_chunks(sample, chunk_bytes=4096))
    await publisher.stop()
    assert (stats.events, stats.records, stats.non_request, stats.noise, stats.rejected) == (12, 11, 1, 0, 0)
    assert publisher.records_sent == 11
    assert publisher.dead_letters_sent == 0
    return publisher


def per_partition(messages: list[Message]) -> dict[int, int]:
    return dict(Counter(m.partition for m in messages))


async def test_topics_are_created_on_apache_kafka(apache_kafka: ApacheKafka) -> None:
    bootstrap = apache_kafka.bootstrap
    assert not await is_embedded_broker(bootstrap)
    logs, compacted = topic_names()
    specs = [TopicSpec(logs, PARTITIONS), TopicSpec(compacted, 2, compacted=True)]
    assert sorted(await ensure_topics(bootstrap, specs)) == sorted([logs, compacted])
    assert await ensure_topics(bootstrap, specs) == []  # a second run finds them

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics([logs, compacted])}
        assert {name: len(t["partitions"]) for name, t in described.items()} == {logs: PARTITIONS, compacted: 2}
        for topic in described.values():
            assert topic["error_code"] == 0
            assert all(p["leader"] == 1 and p["replicas"] == [1] for p in topic["partitions"])
    finally:
        await admin.close()
    assert await end_offsets(bootstrap, logs) == dict.fromkeys(range(PARTITIONS), 0)


async def test_idempotent_ingest_and_exact_end_offsets(apache_kafka: ApacheKafka, sample_capture: Path) -> None:
    bootstrap = apache_kafka.bootstrap
    logs, deadletter = topic_names()
    publisher = await ingest_sample(bootstrap, sample_capture, logs, deadletter)

    messages = await read_topic(bootstrap, logs, until=publisher.batches_sent)
    assert len(messages) == publisher.batches_sent
    received = records_of_batches(messages, PARTITIONS, max_records=3)
    all_partitions = list(range(PARTITIONS))
    assert len(received) == 11
    assert Counter(map(canon, received)) == Counter(map(canon, expected_records(sample_capture)))

    # Apache Kafka: the end offset is the number of messages in the partition (idempotent producer, no
    # transaction markers), so offsets are dense; Tansu answers the last batch's base offset + 1 instead.
    counts = per_partition(messages)
    assert set(counts) == set(all_partitions)  # every partition got at least its heartbeat batch
    assert await end_offsets(bootstrap, logs) == counts
    for partition, count in counts.items():
        assert sorted(m.offset for m in messages if m.partition == partition) == list(range(count))
    assert any(count > 1 for count in counts.values())  # several messages per partition, one producer batch
    assert await end_offsets(bootstrap, deadletter) == dict.fromkeys(all_partitions, 0)


async def test_topic_data_survives_a_broker_restart(apache_kafka: ApacheKafka, sample_capture: Path) -> None:
    bootstrap = apache_kafka.bootstrap
    logs, deadletter = topic_names()
    publisher = await ingest_sample(bootstrap, sample_capture, logs, deadletter)
    before = await read_topic(bootstrap, logs, until=publisher.batches_sent)
    offsets_before = await end_offsets(bootstrap, logs)
    assert sum(offsets_before.values()) == len(before) == publisher.batches_sent

    try:
        apache_kafka.stop()
    finally:
        assert apache_kafka.start() == bootstrap  # same port and data directory

    assert await ensure_topics(bootstrap, [TopicSpec(logs, PARTITIONS), TopicSpec(deadletter, PARTITIONS)]) == []
    after = await read_topic(bootstrap, logs, until=len(before))
    key = lambda m: (m.partition, m.offset)  # noqa: E731
    assert sorted(after, key=key) == sorted(before, key=key)
    assert await end_offsets(bootstrap, logs) == offsets_before

    # And the restarted broker takes new data after the old: offsets go on from the old end.
    again = Ingestor(Publisher(bootstrap, logs, deadletter, idempotent=True), PARTITIONS, IngestConfig(batch_records=3))
    await again.publisher.start()
    await again.ingest_chunks(str(sample_capture), file_chunks(sample_capture))
    await again.publisher.stop()
    both = await read_topic(bootstrap, logs, until=len(before) + again.publisher.batches_sent)
    assert await end_offsets(bootstrap, logs) == per_partition(both)
    assert sum(len(records_of_batch(m.value)) for m in both) == 22
