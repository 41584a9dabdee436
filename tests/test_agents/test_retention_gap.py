"""A worker whose checkpoint is behind the logs topic's first message (retention deleted messages while it was
down) resumes at that message: what was deleted is skipped, counted and logged, and the lag reaches 0 without new
traffic. Before, the lag stayed above 0 until more logs came (the soak's stall at its first worker restart on
Apache Kafka, whose 7-day retention deleted the soak's January-dated records)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from agents.settings import KafkaSettings
from tests.test_agents.test_stream_worker import ingest
from tests.test_agents.worker_web import WebWorker, by_label, value, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


async def end_offsets(settings: KafkaSettings) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap)
    await consumer.start()
    try:
        return await consumer.end_offsets([TopicPartition(settings.logs_topic, p) for p in range(settings.partitions)])
    finally:
        await consumer.stop()


async def delete_before(settings: KafkaSettings, offsets: dict[TopicPartition, int]) -> None:
    """What retention does: every message before `offsets` is gone."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(offset) for tp, offset in offsets.items()})
    finally:
        await admin.close()


async def lag(worker: WebWorker) -> float | None:
    lags = by_label(await worker.metrics(), "tailwatch_consumer_lag")
    return sum(lags.values()) if len(lags) == 4 else None


def test_messages_deleted_while_down_are_skipped_and_lag_reaches_zero(apache_kafka, sample_capture: Path,  # type: ignore[no-untyped-def]
                                                                       tmp_path: Path) -> None:
    settings = KafkaSettings(apache_kafka.bootstrap, f"g{int(time.time() * 1000) % 10**9}", 4, 1)
    data_dir = tmp_path / "worker"

    async def scenario() -> None:
        await ingest(settings, sample_capture)
        applied = await end_offsets(settings)
        worker = WebWorker(settings, data_dir)
        try:
            await worker.wait_ready()

            async def caught_up() -> bool:
                return await lag(worker) == 0

            await wait_for(caught_up, 60, "the first worker to read the capture")
            worker.process.terminate()  # a clean stop: its checkpoint is in the table when it exits
            worker.process.wait(timeout=60)
        finally:
            worker.kill()
        await ingest(settings, sample_capture)  # while no worker runs …
        ends = await end_offsets(settings)
        await delete_before(settings, ends)  # … and retention deletes it before one does
        missed = sum(ends[tp] - applied[tp] for tp in ends)
        assert missed > 0
        worker = WebWorker(settings, tmp_path / "worker")
        try:
            await worker.wait_ready()

            async def skipped() -> bool:
                return await lag(worker) == 0 and \
                    value(await worker.metrics(), "tailwatch_deleted_unread_messages_total") == missed

            await wait_for(skipped, 60, f"lag 0 and {missed} messages counted as deleted unread")
            assert "messages deleted by the topic's retention before they were processed" in worker.log_text()
            # the partitions go on with what comes next (the count read first: the worker may read the next ingest
            # before this test asks again)
            before = value(await worker.metrics(), "tailwatch_records_in_total")
            await ingest(settings, sample_capture)

            async def read_more() -> bool:
                samples = await worker.metrics()
                return value(samples, "tailwatch_records_in_total") > before and await lag(worker) == 0

            try:
                await wait_for(read_more, 60, "the worker to read the next ingest")
            except AssertionError as error:  # what the worker did, for whoever reads the failure
                tail = "\n".join(worker.log_text().splitlines()[-40:])
                raise AssertionError(f"{error}; lag {await lag(worker)}; the worker's log ends with:\n{tail}") from None
        finally:
            worker.kill()

    asyncio.run(scenario())
