"""An alert event still retrying must not be skipped after a crash because a later event of its partition finished
first: the notifier acknowledges in offset order (Faust commits the first run of consecutive acked offsets, so an
out-of-order ack committed past the unfinished event, and the restarted notifier never delivered it)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.commands.notify_cmd import notify_topic_specs
from agents.settings import KafkaSettings
from agents.topics import ensure_topics
from tests.alert_samples import alert_event
from tests.receivers import HttpReceiver, Reply
from tests.support import read_topic
from tests.test_agents.test_notify.channels import SLACK_SECRET_PATH, channel_env, channel_file
from tests.test_agents.test_notify.test_notifier import keys_of, settle, start

pytestmark = pytest.mark.integration


async def committed(settings: KafkaSettings, group: str, partitions: list[int]) -> dict[int, int | None]:
    """The consumer group's committed offsets on the alerts topic (the group is not joined)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(settings.topic("alerts"), p)) for p in partitions}
    finally:
        await consumer.stop()


async def test_a_retrying_event_survives_a_crash_after_later_events_finished(kafka_settings: KafkaSettings,
                                                                             tmp_path: Path) -> None:
    slow = alert_event(endpoint="/api/slow", channels=["slack-critical"])
    fast = [alert_event(endpoint=f"/api/fast{i}", channels=["pagerduty"]) for i in range(3)]
    marker = alert_event(endpoint="/api/marker", channels=["pagerduty"])
    await ensure_topics(kafka_settings.bootstrap or "", notify_topic_specs(kafka_settings))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap, acks="all")
    await producer.start()
    alerts = kafka_settings.topic("alerts")
    group = f"{kafka_settings.topic_prefix}-notifier"  # NotifierProcess's default app id
    try:  # one partition, the slow one first
        for event in [slow, *fast]:
            await producer.send_and_wait(alerts, orjson.dumps(event), partition=0)
        with HttpReceiver() as http:
            http.program(SLACK_SECRET_PATH, *[Reply(503)] * 1000)  # Slack is down: the first event keeps retrying
            channels = channel_file(tmp_path, max_attempts=100)  # ~90 s of retries
            notifier = start(kafka_settings, channels, channel_env(http, None), tmp_path)
            try:
                try:  # the later events are done: their outcomes are in the ledger, so they were acknowledged
                    await read_topic(kafka_settings.bootstrap or "", kafka_settings.topic("deliveries"), until=3,
                                     timeout_s=60)
                except AssertionError as error:
                    raise AssertionError(notifier.stderr[-3000:]) from error
                # A marker on another partition, finished after them: once Faust has committed its offset, it has
                # committed every ack made before it (one commit covers all partitions).
                await producer.send_and_wait(alerts, orjson.dumps(marker), partition=1)
                deadline = time.monotonic() + 60
                offsets = await committed(kafka_settings, group, [0, 1])
                while offsets[1] != 1 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                    offsets = await committed(kafka_settings, group, [0, 1])
                assert offsets[1] == 1, (offsets, notifier.stderr[-3000:])
                assert offsets[0] in (None, 0), offsets  # not past the slow event
                notifier.kill()
            finally:
                notifier.stop()
            with http._lock:
                http._programs.clear()  # Slack is back
            restarted = start(kafka_settings, channels, channel_env(http, None), tmp_path)
            try:
                await settle(restarted, {0: 4}, timeout_s=120)  # partition 1 is committed: not read again
            finally:
                restarted.stop()
            slack = keys_of(http.requests(SLACK_SECRET_PATH))
            assert list(slack.values()) == [1] and next(iter(slack)).startswith(slow["fingerprint"]), slack
            assert len(keys_of(http.requests("/v2/enqueue"))) == 4  # not sent again: the ledger has them
    finally:
        await producer.stop()
