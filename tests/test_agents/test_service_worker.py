"""The worker's service stage on the embedded broker: the service snapshots it publishes on `<prefix>.metrics.service`
are replay's (the endpoint panes of each (service, minute) merged); a value on the metrics topic that is not one is
dead-lettered and costs only itself; `/metrics` counts what the stage did; its table holds exactly the closed service
panes its operators hold, so it stays as bounded as they are."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.commands.replay import replay_events
from agents.commands.worker import stream_topic_specs
from agents.service_worker import TABLE_NAME, SentValues
from agents.settings import KafkaSettings
from agents.topic_reader import topic_messages
from agents.topics import ensure_topics
from pipeline.parsing import ParseStats
from pipeline.service import ServicePaneEvent, service_snapshot
from schemas.deadletter import DeadLetter
from schemas.metrics import ServicePaneSnapshot
from tests.captures import canonical
from tests.support import read_topic
from tests.test_agents.test_stream_worker import ingest
from tests.test_agents.test_worker_restart import trickle
from tests.test_agents.worker_web import WebWorker, by_label, incident_capture, value, wait_for

pytestmark = pytest.mark.integration

JUNK = [b"not json", b'{"kind": "progress", "partition": -1}', b'{"kind": "gossip"}']


def replayed_service_panes(capture: Path) -> list[dict[str, Any]]:
    """The service snapshots `replay` gives for `capture` (both stages, one process)."""
    args = argparse.Namespace(inputs=[str(capture)], lateness_ms=10_000, route=[])
    events: list[ServicePaneEvent] = []
    replay_events(args, ParseStats(), service_events=events)
    return [service_snapshot(event) for event in events]


async def publish_junk(settings: KafkaSettings) -> None:
    """`JUNK` at the start of every metrics partition, as a foreign producer might send it."""
    bootstrap = settings.bootstrap or ""
    await ensure_topics(bootstrap, stream_topic_specs(settings))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for partition in range(settings.partitions):
            for junk in JUNK:
                await producer.send_and_wait(settings.topic("metrics"), value=junk, key=b"junk", partition=partition)
    finally:
        await producer.stop()


def test_live_service_snapshots_equal_replay(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    capture = incident_capture(tmp_path / "capture.jsonl", minutes=12)  # two services, records out of order
    expected = replayed_service_panes(capture)
    assert len(expected) >= 20 and len({s["service"] for s in expected}) == 2
    assert any(s["endpoints"] > 1 for s in expected) and sum(s["late_dropped"] for s in expected) > 0
    partitions = kafka_settings.partitions

    async def scenario() -> tuple[list[Any], list[Any], Any]:
        await publish_junk(kafka_settings)
        await ingest(kafka_settings, capture)
        worker = WebWorker(kafka_settings, tmp_path / "worker")
        try:
            await worker.wait_ready()

            async def done() -> bool:
                return '"input fully processed"' in worker.log_text()

            await wait_for(done, 90, "the input to be fully processed")
            bootstrap = kafka_settings.bootstrap or ""
            live = await read_topic(bootstrap, kafka_settings.topic("metrics.service"), until=len(expected),
                                    timeout_s=30)
            letters = await read_topic(bootstrap, kafka_settings.deadletter_topic, until=len(JUNK) * partitions,
                                       timeout_s=30)
            return live, letters, await worker.metrics()
        finally:
            worker.kill()

    live, letters, metrics = asyncio.run(scenario())
    assert sorted(canonical(m.value) for m in live) == sorted(canonical(s) for s in expected)
    for message in live:
        ServicePaneSnapshot.model_validate(message.value)
        assert message.key == message.value["service"].encode()
    assert sum(s["endpoints"] for s in expected) == sum(s["endpoints"] for s in (m.value for m in live))
    # the junk: dead-lettered with its partition and offset, and nothing else changed
    rejected = [m.value for m in letters if m.value["kind"] == "invalid_metrics_value"]
    for letter in rejected:
        DeadLetter.model_validate(letter)
    topic = kafka_settings.topic("metrics")
    assert sorted((letter["source"], letter["offset"]) for letter in rejected) == sorted(
        (f"kafka:{topic}/{partition}", offset) for partition in range(partitions) for offset in range(len(JUNK)))
    assert value(metrics, "tailwatch_service_invalid_values_total") == len(JUNK) * partitions
    # one worker holds every metrics partition: every value its logs stage sent comes back byte for byte and is
    # taken as made, not decoded (the snapshots above equal replay's all the same); only the junk was decoded
    assert value(metrics, "tailwatch_service_values_read_back_total") == value(
        metrics, "tailwatch_service_values_in_total") > 0
    assert value(metrics, "tailwatch_service_panes_closed_total") == len(expected)
    assert value(metrics, "tailwatch_service_duplicate_endpoint_panes_total") == 0
    assert value(metrics, "tailwatch_service_late_endpoint_panes_total") == 0
    heard = by_label(metrics, "tailwatch_service_partitions_heard")
    assert heard == {(("partition", str(p)),): partitions for p in range(partitions)}
    lag = by_label(metrics, "tailwatch_service_consumer_lag")
    assert set(lag) == set(heard) and set(lag.values()) == {0}


def test_the_service_stage_table_holds_what_it_holds_in_memory(kafka_settings: KafkaSettings,
                                                               tmp_path: Path) -> None:
    """90 minutes of two services, past the hour closed service panes are kept for, ingested while the worker runs:
    the stage's table (read back from its changelog) holds a checkpoint per metrics partition and exactly the closed
    service panes its operators hold (the pipeline's bound: the hour the rules read), the older ones deleted."""
    capture = incident_capture(tmp_path / "long.jsonl", minutes=90)

    async def scenario() -> tuple[dict[bytes, bytes | None], Any]:
        worker = WebWorker(kafka_settings, tmp_path / "worker")
        try:
            await worker.wait_ready()
            await trickle(kafka_settings, capture, pieces=30, pause_s=0.2)

            async def done() -> bool:
                return '"input fully processed"' in worker.log_text()

            await wait_for(done, 120, "the input to be fully processed")
            metrics = await worker.metrics()
        finally:
            worker.kill()
        table: dict[bytes, bytes | None] = {}
        changelog = f"{kafka_settings.topic_prefix}-metrics-{TABLE_NAME}-changelog"
        async for message in topic_messages(kafka_settings.bootstrap or "", changelog, idle_s=1.5):
            assert message.key is not None
            table[message.key] = message.value
        return table, metrics

    table, metrics = asyncio.run(scenario())
    closed: dict[str, list[Any]] = {}
    checkpoints = 0
    for key, raw in table.items():
        if raw is None:
            continue
        name = key.decode().strip('"')
        checkpoints += name.endswith("/checkpoint")
        if "/closed/" in name:
            closed[name] = orjson.loads(raw)
    deleted = [key for key, raw in table.items() if raw is None]
    held = value(metrics, "tailwatch_service_panes_held")  # open ones: none, the input has ended
    assert 0 < held == sum(len(panes) for panes in closed.values()), "the table holds what memory holds"
    assert deleted and held < value(metrics, "tailwatch_service_panes_closed_total"), "the oldest were deleted"
    assert checkpoints <= kafka_settings.partitions


def test_sent_values_are_taken_back_once_by_partition_and_bytes_and_bounded() -> None:
    """`SentValues` (what the logs stage sent, kept for the service stage to read back): a value is found only
    under its partition and its exact bytes, once; past `max_bytes` the oldest are forgotten (then decoded as any
    other value); a revoked partition's are dropped."""
    sent = SentValues(max_bytes=100)
    progress = {"kind": "progress", "partition": 0}
    sent.add(1, b"a" * 40, progress, None)
    assert sent.take(2, b"a" * 40) is None and sent.take(1, b"a" * 39) is None
    assert sent.take(1, b"a" * 40) == (progress, None)
    assert sent.take(1, b"a" * 40) is None and sent.bytes == 0
    for i in range(10):
        sent.add(i % 2, bytes([i]) * 30, {"i": i}, None)
        assert sent.bytes <= 100
    assert [key[1][0] for key in sent.values] == [7, 8, 9]  # the newest that fit
    sent.forget([1])
    assert [key[1][0] for key in sent.values] == [8] and sent.bytes == 30
