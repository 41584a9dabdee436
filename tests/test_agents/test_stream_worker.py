"""The metrics worker on the embedded broker: ready within 5 s, and its snapshots equal offline replay's."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.commands.ingest import log_topic_specs
from agents.commands.replay import replay_events
from agents.ingest import Ingestor
from agents.publisher import Publisher
from agents.settings import KafkaSettings
from agents.sources import file_chunks
from agents.topics import ensure_topics
from pipeline.metrics import snapshot
from pipeline.parsing import ParseStats
from schemas.deadletter import DeadLetter
from tests.captures import canonical, disordered_capture
from tests.support import pane_snapshot, read_topic

pytestmark = pytest.mark.integration

READY_BOUND_S = 5.0


def start_worker(settings: KafkaSettings, data_dir: Path, store: str = "memory://") -> subprocess.Popen[str]:
    env = {**os.environ, "TAILWATCH_KAFKA_BOOTSTRAP": settings.bootstrap or ""}
    return subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "worker", "--topic-prefix", settings.topic_prefix,
         "--app-id", f"{settings.topic_prefix}-metrics", "--data-dir", str(data_dir), "--store", store],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def wait_ready(worker: subprocess.Popen[str], timeout_s: float = 30.0, seen: list[str] | None = None) -> float:
    """Seconds until the worker logs that it is ready (the lines before go to `seen`); its log then goes on into
    /tmp/tailwatch-worker-<pid>.log."""
    started = time.monotonic()
    assert worker.stderr is not None
    while time.monotonic() - started < timeout_s:
        line = worker.stderr.readline()
        if not line:
            break
        if seen is not None:
            seen.append(line)
        if '"worker ready"' in line:
            threading.Thread(target=_drain, args=(worker,), daemon=True).start()
            return time.monotonic() - started
    raise AssertionError("worker never became ready")


def _drain(worker: subprocess.Popen[str]) -> None:
    assert worker.stderr is not None
    with open(f"/tmp/tailwatch-worker-{worker.pid}.log", "w", buffering=1) as log:
        for line in worker.stderr:
            log.write(line)


def stop(worker: subprocess.Popen[str]) -> None:
    worker.kill()
    worker.wait(timeout=10)


@pytest.fixture
def worker_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "worker-data"


async def ingest(settings: KafkaSettings, capture: Path) -> None:
    bootstrap = settings.bootstrap
    assert bootstrap
    await ensure_topics(bootstrap, log_topic_specs(settings))
    publisher = Publisher(bootstrap, settings.logs_topic, settings.deadletter_topic, idempotent=False)
    await publisher.start()
    await Ingestor(publisher, settings.partitions).ingest_chunks(str(capture), file_chunks(capture), stream="files")
    await publisher.stop()


def test_worker_is_ready_within_five_seconds(kafka_settings: KafkaSettings, worker_dir: Path) -> None:
    worker = start_worker(kafka_settings, worker_dir)
    lines: list[str] = []
    try:
        elapsed = wait_ready(worker, seen=lines)
    finally:
        stop(worker)
    assert elapsed <= READY_BOUND_S, f"ready after {elapsed:.2f}s"
    # Faust's 1.5 s fetch long-poll held a partition with data back behind idle ones (agents/fetch_wait.py)
    assert any('"fetch wait shortened"' in line for line in lines), "".join(lines)


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_live_snapshots_equal_replay(kafka_settings: KafkaSettings, sample_capture: Path, tmp_path: Path,
                                     worker_dir: Path, store: str) -> None:
    capture = disordered_capture(sample_capture, tmp_path / "disordered.json")
    args = argparse.Namespace(inputs=[str(capture)], lateness_ms=10_000, route=[])
    expected = [snapshot(event) for event in replay_events(args, ParseStats())[0]]
    late = sum(s["late_dropped"] for s in expected)
    assert late > 0, "the capture should have records beyond the allowed lateness"
    assert len(expected) > 30

    asyncio.run(ingest(kafka_settings, capture))
    worker = start_worker(kafka_settings, worker_dir, store)
    try:
        wait_ready(worker)
        messages = asyncio.run(read_topic(kafka_settings.bootstrap or "", kafka_settings.topic("metrics"),
                                          until=len(expected), timeout_s=60, keep=pane_snapshot))
    finally:
        stop(worker)
    live = sorted(canonical(m.value) for m in messages)
    assert len(live) == len(expected)
    assert live == sorted(canonical(s) for s in expected)
    # keyed by service|endpoint, so one endpoint's snapshots stay in one partition
    assert all(m.key == f"{m.value['service']}|{m.value['endpoint']}".encode() for m in messages)


INVALID_BATCHES = [b"not json", b'{"v": 4, "producer": "p", "watermark_ms": 0, "records": []}',
                   b'{"producer": "p", "watermark_ms": null, "records": [{"service": "s"}]}', None]


async def publish_raw(settings: KafkaSettings, values: list[bytes | None]) -> None:
    """`values` at the start of every logs partition, before any batch, as a foreign producer might send them."""
    from aiokafka import AIOKafkaProducer

    bootstrap = settings.bootstrap
    assert bootstrap
    await ensure_topics(bootstrap, log_topic_specs(settings))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for partition in range(settings.partitions):
            for value in values:
                await producer.send_and_wait(settings.logs_topic, value=value, key=b"junk", partition=partition)
    finally:
        await producer.stop()


def test_invalid_log_messages_cost_only_themselves(kafka_settings: KafkaSettings, sample_capture: Path,
                                                   worker_dir: Path) -> None:
    """Messages on the logs topic that are not log batches are dead-lettered with their offset and reason; the
    batches after them give exactly replay's snapshots."""
    args = argparse.Namespace(inputs=[str(sample_capture)], lateness_ms=10_000, route=[])
    expected = [snapshot(event) for event in replay_events(args, ParseStats())[0]]
    asyncio.run(publish_raw(kafka_settings, INVALID_BATCHES))
    asyncio.run(ingest(kafka_settings, sample_capture))
    worker = start_worker(kafka_settings, worker_dir)
    try:
        wait_ready(worker)
        messages = asyncio.run(read_topic(kafka_settings.bootstrap or "", kafka_settings.topic("metrics"),
                                          until=len(expected), timeout_s=60, keep=pane_snapshot))
        letters = asyncio.run(read_topic(kafka_settings.bootstrap or "", kafka_settings.deadletter_topic,
                                         until=len(INVALID_BATCHES) * kafka_settings.partitions, timeout_s=30))
    finally:
        stop(worker)
    assert sorted(canonical(m.value) for m in messages) == sorted(canonical(s) for s in expected)
    rejected = [m.value for m in letters if m.value["kind"] == "invalid_log_batch"]
    for letter in rejected:
        DeadLetter.model_validate(letter)
    topic = kafka_settings.logs_topic
    assert sorted((letter["source"], letter["offset"]) for letter in rejected) == sorted(
        (f"kafka:{topic}/{partition}", offset) for partition in range(kafka_settings.partitions)
        for offset in range(len(INVALID_BATCHES)))
    reasons = {letter["offset"]: letter["reason"] for letter in rejected}
    assert reasons[0].startswith("not JSON") and reasons[3] == "empty message (a tombstone)"
    assert "`$.v`" in reasons[1] and "`$.records[0]`" in reasons[2]


def test_an_idle_partition_is_checkpointed_and_acknowledged(kafka_settings: KafkaSettings, sample_capture: Path,
                                                            worker_dir: Path) -> None:
    """Input that stops without ending (a live ingest between requests): each partition is checkpointed once idle,
    so the group's committed offsets reach the end and a restart re-reads nothing — not only at the next message,
    which may be hours away."""
    settings = kafka_settings
    bootstrap = settings.bootstrap
    assert bootstrap

    async def publish_without_end() -> None:
        await ensure_topics(bootstrap, log_topic_specs(settings))
        publisher = Publisher(bootstrap, settings.logs_topic, settings.deadletter_topic, idempotent=False)
        await publisher.start()
        feed = Ingestor(publisher, settings.partitions).feed("files")
        parser = feed.new_parser(str(sample_capture))
        for chunk in file_chunks(sample_capture):
            await feed.push(parser.feed(chunk))
        await feed.push(parser.finish())
        await feed.flush(heartbeat=True)  # no final batch: the producer is still running
        await publisher.stop()

    async def committed_reach_the_end() -> tuple[dict[int, int], dict[int, int]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"{settings.topic_prefix}-metrics",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(settings.logs_topic, p) for p in range(settings.partitions)]
            ends = {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
            committed: dict[int, int] = {}
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                committed = {tp.partition: (await consumer.committed(tp)) or 0 for tp in tps}
                if committed == ends:
                    break
                await asyncio.sleep(0.5)
            return committed, ends
        finally:
            await consumer.stop()

    worker = start_worker(settings, worker_dir)
    try:
        wait_ready(worker)
        asyncio.run(publish_without_end())
        committed, ends = asyncio.run(committed_reach_the_end())
    finally:
        stop(worker)
    assert sum(ends.values()) > 0
    assert committed == ends, "every message acknowledged once its partition went idle"
