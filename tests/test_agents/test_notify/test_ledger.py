"""The deliveries ledger on a real broker: a write that fails is retried until it lands (the embedded broker
stopped and started again), a start-up reads from the last restatement, not the whole history, and Apache Kafka
gets the topic configs that make it compact."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from agents.commands.notify_cmd import LEDGER_TOPIC_CONFIGS, notify_topic_specs
from agents.embedded_broker import EmbeddedBroker
from agents.notify import ledger as ledger_module
from agents.notify.ledger import LedgerWriter, read_ledger
from agents.settings import KafkaSettings
from agents.topics import TopicSpec, ensure_topics
from pipeline.notify.ledger_state import Acknowledged, LedgerState, Write
from pipeline.notify.routing import AlertStatus
from schemas.deliveries import AlertSource, Delivery
from tests.support import read_topic

pytestmark = pytest.mark.integration

START_MS = 1_772_359_200_000


def outcome(fingerprint: str, transition: str, offset: int) -> Delivery:
    return Delivery(key=f"{fingerprint}/{transition}/pagerduty", fingerprint=fingerprint, transition=transition,
                    channel="pagerduty", kind="trigger" if transition.startswith("firing") else "resolve",
                    outcome="delivered", attempts=1, finished_at="2026-03-01T10:00:00Z", rule="r",
                    severity="CRITICAL", source=AlertSource(partition=0, offset=offset))


async def test_a_failed_ledger_write_is_retried_until_the_broker_is_back() -> None:
    broker = EmbeddedBroker()
    broker.start()
    topic = "retry.deliveries"
    try:
        await ensure_topics(broker.bootstrap, [TopicSpec(topic, 2, compacted=True)])
        writer = LedgerWriter(broker.bootstrap, topic, "retry.notify.deadletter", LedgerState(),
                              attempt_timeout_s=1.0)
        await writer.start()
        try:
            await writer.write([("before", b'{"n": 1}')])
            broker.stop()
            write: asyncio.Task[None] = asyncio.create_task(writer.write([("during", b'{"n": 2}')]))
            for _ in range(600):  # bounded: 30 s
                if writer.failures >= 2 or write.done():
                    break
                await asyncio.sleep(0.05)
            assert writer.failures >= 2 and not write.done()  # failed twice, still trying
            broker.start()  # same port; its memory storage starts empty
            await ensure_topics(broker.bootstrap, [TopicSpec(topic, 2, compacted=True)])
            await asyncio.wait_for(write, 60)
        finally:
            await writer.stop()
        landed = await read_topic(broker.bootstrap, topic)
        # It landed; an attempt that timed out may have landed as well: the same record again, in order.
        assert landed and {(m.key, m.value["n"]) for m in landed} == {(b"during", 2)}
    finally:
        broker.stop()


async def test_start_up_reads_the_last_restatement_not_the_history(kafka_settings: KafkaSettings,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "RESTATE_AFTER", 200)
    bootstrap, topic = kafka_settings.bootstrap or "", kafka_settings.topic("deliveries")
    await ensure_topics(bootstrap, [TopicSpec(topic, 4, compacted=True)])
    state = LedgerState()
    writer = LedgerWriter(bootstrap, topic, kafka_settings.topic("notify.deadletter"), state)
    await writer.start()
    written = 0
    try:
        for round_ in range(40):  # 20 alerts firing and resolving in turns, 10 minutes apart: 800 deliveries
            window_end_ms = START_MS + round_ * 600_000
            transition = f"{'firing' if round_ % 2 == 0 else 'resolved'}@{window_end_ms}"
            acked, records = [], []
            for n in range(20):
                offset = round_ * 20 + n
                records.append(outcome(f"{n:016x}", transition, offset))
                acked.append(Acknowledged(0, offset, AlertStatus(
                    f"{n:016x}", ("pagerduty",) if round_ % 2 == 0 else (), transition, window_end_ms)))
            writes: list[Write] = state.record(records)
            await writer.write(writes)
            steps, _ = state.acknowledge(acked)
            await writer.write(*steps)
            written += len(writes) + sum(len(step) for step in steps)
    finally:
        await writer.stop()
    assert writer.restatements >= 5
    restarted = await read_ledger(bootstrap, topic, idle_s=0.5)
    # The last restatement (at most 20 alerts + 1 read offset) and at most RESTATE_AFTER records after it.
    assert restarted.records_read <= 21 + 200 + 41 < written
    assert restarted.alerts == state.alerts and restarted.read == state.read == {0: 800}
    assert restarted.deliveries == {}
    everything = await read_topic(bootstrap, topic)  # what it would have read without the checkpoint
    assert len(everything) > written  # every record written (and the restatements' copies) is still there


@pytest.mark.kafka
async def test_the_ledger_topic_is_created_for_compaction_on_apache_kafka(apache_kafka: Any) -> None:
    settings = KafkaSettings(apache_kafka.bootstrap, f"l{uuid.uuid4().hex[:10]}", 2, 1)
    await ensure_topics(settings.bootstrap or "", notify_topic_specs(settings))
    admin = AIOKafkaAdminClient(bootstrap_servers=apache_kafka.bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC,
                                                                  settings.topic("deliveries"))])
    finally:
        await admin.close()
    [resource] = response.resources
    configs = {entry[0]: entry[1] for entry in resource[4]}
    assert configs["cleanup.policy"] == "compact"
    assert {name: configs[name] for name in LEDGER_TOPIC_CONFIGS} == LEDGER_TOPIC_CONFIGS
