"""A producer that stops without its final batch (a crashed `tailwatch ingest`) must not hold a partition's
watermark back forever: once it has been silent for `--idle-producer-ms` of publish time, the other producers close
its panes. Without that, every pane after the crash stays open and no alert ever fires again."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from agents.commands.ingest import log_topic_specs
from agents.commands.worker import stream_topic_specs
from agents.ingest import IngestConfig, Ingestor
from agents.publisher import Publisher
from agents.settings import KafkaSettings
from agents.topics import ensure_topics
from tests.support import pane_snapshot, read_topic
from tests.test_agents.test_stream_worker import stop, wait_ready

pytestmark = pytest.mark.integration

T0 = 1_767_700_800_000  # 2026-01-06T12:00:00Z, a minute boundary


def factory_logs(start_ms: int, minutes: int, per_minute: int = 20) -> bytes:
    lines = []
    for i in range(minutes * per_minute):
        at = datetime.fromtimestamp((start_ms + i * 60_000 // per_minute) / 1000, UTC)
        lines.append(orjson.dumps({
            "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "level": "INFO",
            "service": "svc", "endpoint": "/api/x", "request_id": f"r{start_ms}-{i}", "tenant_id": "t",
            "method": "GET", "path": "/api/x", "status": 200, "duration_ms": 5 + i % 7}))
    return b"\n".join(lines) + b"\n"


async def test_a_silent_producer_stops_holding_the_watermark(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    bootstrap = kafka_settings.bootstrap or ""
    await ensure_topics(bootstrap, stream_topic_specs(kafka_settings) + log_topic_specs(kafka_settings))
    env = {**os.environ, "TAILWATCH_KAFKA_BOOTSTRAP": bootstrap}
    worker = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "worker", "--topic-prefix", kafka_settings.topic_prefix,
         "--app-id", f"{kafka_settings.topic_prefix}-metrics", "--data-dir", str(tmp_path / "worker"),
         "--idle-producer-ms", "1500"],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        await asyncio.to_thread(wait_ready, worker, 60)
        publisher = Publisher(bootstrap, kafka_settings.logs_topic, kafka_settings.deadletter_topic,
                              idempotent=False)
        await publisher.start()
        try:
            ingestor = Ingestor(publisher, kafka_settings.partitions, IngestConfig())
            # "crashed": minutes 0-2, then nothing more, and never a final batch.
            await ingestor.ingest_chunks("crashed", [factory_logs(T0, 3)], final=False)
            await asyncio.sleep(3)  # longer than --idle-producer-ms of publish time
            # "live": minutes 5-6 (its watermark: 12:06:57 - 10 s), still running.
            await ingestor.ingest_chunks("live", [factory_logs(T0 + 5 * 60_000, 2)], final=False)
        finally:
            await publisher.stop()
        starts: set[int] = set()
        for _ in range(20):  # the crashed producer's three minutes and the live one's first close
            messages = await read_topic(bootstrap, kafka_settings.topic("metrics"), idle_s=1.0, timeout_s=5,
                                         keep=pane_snapshot)
            starts = {m.value["window_start_ms"] for m in messages}
            if len(starts) >= 4:
                break
    finally:
        stop(worker)
    assert starts == {T0, T0 + 60_000, T0 + 120_000, T0 + 5 * 60_000}
