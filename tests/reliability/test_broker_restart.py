"""Broker restart during ingest on Apache Kafka: 0 records lost, none duplicated — per (service, endpoint,
minute) counts read back from the logs topic equal the input's. `export KAFKA_LIB_DIR=...`; marker `kafka`.

The embedded broker (Tansu 0.6.0) stores in `memory://` unless given postgres:// or s3://, so a restart of it
loses the topic by design; this test runs on Apache Kafka only."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import pytest

from agents.commands.ingest import log_topic_specs
from agents.ingest import Ingestor
from agents.publisher import Publisher
from agents.settings import KafkaSettings
from agents.topics import ensure_topics
from pipeline.parsing import LogParser
from pipeline.synthetic import DEMO_START_MS, generate_events, render_capture
from tests.kafka_tier import ApacheKafka
from tests.support import read_topic, records_of_batches

pytestmark = pytest.mark.kafka
PARTITIONS = 2


def counts(records: list[dict]) -> Counter[tuple[str, str, int]]:
    return Counter((r["service"], r["endpoint"], r["event_time_ms"] // 60_000) for r in records)


def test_apache_kafka_restart_mid_ingest_loses_and_duplicates_nothing(apache_kafka: ApacheKafka) -> None:
    events = list(generate_events(seed=11, start_ms=DEMO_START_MS, minutes=4, requests_per_minute=300))
    chunks = list(render_capture(events, "jsonl"))
    expected_parser = LogParser("expected")
    expected = expected_parser.feed(b"".join(chunks)).records + expected_parser.finish().records
    assert len(expected) > 500
    settings = KafkaSettings(apache_kafka.bootstrap, f"restart{int(time.time() * 1000) % 10**9}", PARTITIONS, 1)
    third = len(chunks) // 3

    async def live(queue: asyncio.Queue[bytes | None]):
        while (chunk := await queue.get()) != b"":
            yield chunk

    async def until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting until {what}"
            await asyncio.sleep(0.02)

    async def scenario() -> tuple[list[dict], Publisher]:
        await ensure_topics(apache_kafka.bootstrap, log_topic_specs(settings))
        publisher = Publisher(apache_kafka.bootstrap, settings.logs_topic, settings.deadletter_topic)
        await publisher.start()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        ingest = asyncio.create_task(Ingestor(publisher, PARTITIONS).ingest_stream("stdin", live(queue),
                                                                                 final=lambda: True))
        try:
            for chunk in chunks[:third]:
                queue.put_nowait(chunk)
            queue.put_nowait(None)  # flush: these are sent and acknowledged before the broker goes down
            await until(lambda: queue.empty() and publisher.flushes > 0, "the first third is acknowledged")
            await asyncio.to_thread(apache_kafka.stop)
            sent = publisher.batches_sent
            for chunk in chunks[third:2 * third]:  # fed while the broker is down
                queue.put_nowait(chunk)
            queue.put_nowait(None)
            await until(lambda: queue.empty() and publisher.batches_sent > sent,
                        "the second third is sent (and waits for the broker)")
            await asyncio.to_thread(apache_kafka.start)
            for chunk in chunks[2 * third:]:
                queue.put_nowait(chunk)
            queue.put_nowait(b"")
            await asyncio.wait_for(ingest, 120)
        finally:
            if not apache_kafka.running:
                apache_kafka.start()
            await publisher.stop()
        messages = await read_topic(apache_kafka.bootstrap, settings.logs_topic, idle_s=3, timeout_s=60)
        return records_of_batches(messages, PARTITIONS, 10**6), publisher

    records, publisher = asyncio.run(scenario())
    got, want = counts(records), counts(expected)
    lost = sum((want - got).values())
    duplicated = sum((got - want).values())
    print(f"records={len(expected)} read_back={len(records)} lost={lost} duplicated={duplicated} "
          f"idempotent={publisher.idempotent}")
    assert lost == 0 and duplicated == 0, (lost, duplicated, publisher.idempotent)
    assert got == want
