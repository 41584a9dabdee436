"""An alert event still retrying must not be skipped after a crash because a later event of its partition finished
first: the notifier acknowledges in offset order (Faust commits the first run of consecutive acked offsets, so an
out-of-order ack committed past the unfinished event, and the restarted notifier never delivered it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.commands.notify_cmd import notify_topic_specs
from agents.settings import KafkaSettings
from agents.topics import ensure_topics
from tests.alert_samples import alert_event
from tests.receivers import HttpReceiver, Reply
from tests.test_agents.test_notify.channels import SLACK_SECRET_PATH, channel_env, channel_file
from tests.test_agents.test_notify.test_notifier import keys_of, settle, start

pytestmark = pytest.mark.integration


async def test_a_retrying_event_survives_a_crash_after_later_events_finished(kafka_settings: KafkaSettings,
                                                                             tmp_path: Path) -> None:
    slow = alert_event(endpoint="/api/slow", channels=["slack-critical"])
    fast = [alert_event(endpoint=f"/api/fast{i}", channels=["pagerduty"]) for i in range(3)]
    await ensure_topics(kafka_settings.bootstrap or "", notify_topic_specs(kafka_settings))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap, acks="all")
    await producer.start()
    try:  # one partition, the slow one first
        for event in [slow, *fast]:
            await producer.send_and_wait(kafka_settings.topic("alerts"), orjson.dumps(event), partition=0)
    finally:
        await producer.stop()
    positions = {0: 4}
    with HttpReceiver() as http:
        http.program(SLACK_SECRET_PATH, *[Reply(503)] * 1000)  # Slack is down: the first event keeps retrying
        channels = channel_file(tmp_path, max_attempts=100)  # ~90 s of retries
        notifier = start(kafka_settings, channels, channel_env(http, None), tmp_path)
        try:
            try:  # the later events are done
                await http.wait_for_async(3, path="/v2/enqueue", timeout_s=60)
            except AssertionError as error:
                raise AssertionError(notifier.stderr[-3000:]) from error
            await asyncio.sleep(2.0)  # several commit intervals (0.5 s)
            notifier.kill()
        finally:
            notifier.stop()
        with http._lock:
            http._programs.clear()  # Slack is back
        restarted = start(kafka_settings, channels, channel_env(http, None), tmp_path)
        try:
            await settle(restarted, positions, timeout_s=120)
        finally:
            restarted.stop()
        slack = keys_of(http.requests(SLACK_SECRET_PATH))
        assert list(slack.values()) == [1] and next(iter(slack)).startswith(slow["fingerprint"]), slack
        assert len(keys_of(http.requests("/v2/enqueue"))) == 3  # not sent again: the ledger has them
