"""`tailwatch notify` as a process on the embedded broker: alert events in, real deliveries out, each
(fingerprint, transition, channel) once — across retries, a new consumer group, and a SIGKILL mid-delivery."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.commands.notify_cmd import notify_topic_specs
from agents.notify.process import NotifierProcess
from agents.settings import KafkaSettings
from agents.topics import ensure_topics
from schemas.deliveries import NotificationDeadLetter
from tests.alert_samples import alert_event
from tests.receivers import HttpReceiver, Reply, SmtpReceiver
from tests.support import ledger_deliveries, read_topic
from tests.test_agents.test_notify.channels import (
    PD_KEY,
    SECRETS,
    SLACK_SECRET_PATH,
    SMTP_PASSWORD,
    SMTP_USER,
    channel_env,
    channel_file,
)

pytestmark = pytest.mark.integration

SECRET_VARS = ("PAGERDUTY_INTEGRATION_KEY", "SLACK_CRITICAL_WEBHOOK", "SLACK_ALERTS_WEBHOOK",
               "SLACK_MONITORING_WEBHOOK", "SMTP_HOST", "SMTP_PASSWORD")
MONITORING = """  slack-monitoring:
    type: slack
    webhook_url: $SLACK_MONITORING_WEBHOOK
"""


async def publish(settings: KafkaSettings, events: list[dict[str, Any] | bytes]) -> dict[int, int]:
    """Publish alert events as the worker does (key = fingerprint); returns partition → next offset."""
    await ensure_topics(settings.bootstrap or "", notify_topic_specs(settings))
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    await producer.start()
    positions: dict[int, int] = {}
    try:
        for event in events:
            value, key = (event, b"junk") if isinstance(event, bytes) else (orjson.dumps(event),
                                                                            event["fingerprint"].encode())
            meta = await producer.send_and_wait(settings.topic("alerts"), value, key=key)
            positions[meta.partition] = max(positions.get(meta.partition, 0), meta.offset + 1)
    finally:
        await producer.stop()
    return positions


def start(settings: KafkaSettings, channels: Path, env: dict[str, str], tmp_path: Path,
          app_id: str | None = None) -> NotifierProcess:
    base = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    os.environ.clear()
    os.environ.update(base)  # the child inherits only what the test gives it
    return NotifierProcess(settings, str(channels), str(tmp_path / "data"), relay=False, env=env, app_id=app_id)


async def settle(notifier: NotifierProcess, positions: dict[int, int], timeout_s: float = 90) -> None:
    settled = await asyncio.to_thread(notifier.wait_settled, positions, timeout_s)
    assert settled, notifier.stderr[-4000:]


async def wait_until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert condition()


def keys_of(requests: list[Any]) -> Counter[str]:
    return Counter(key for r in requests if r.answered and r.reply.status < 300
                   for key in r.headers["X-Tailwatch-Delivery-Key"].split(","))


async def test_each_transition_reaches_each_channel_once(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    critical = alert_event()
    resolved = alert_event(change="resolved", window_end="2026-03-01T10:30:00Z")
    slow = alert_event(rule="factory-slow-responses", severity="HIGH", channels=["slack-alerts", "email"])
    spike = alert_event(rule="factory-traffic-spike", severity="MEDIUM", channels=["slack-monitoring"])
    events = [critical, slow, critical, spike, resolved]  # `critical` published twice, as after a worker crash
    positions = await publish(kafka_settings, events)
    with HttpReceiver() as http, SmtpReceiver(auth={SMTP_USER: SMTP_PASSWORD}) as smtp:
        # PagerDuty fails first (500, then 429 with Retry-After), then recovers.
        http.program("/v2/enqueue", Reply(500, b"error"), Reply(429, b"slow down", {"Retry-After": "1"}))
        channels = channel_file(tmp_path, extra=MONITORING)
        notifier = start(kafka_settings, channels, channel_env(http, smtp), tmp_path)
        try:
            await settle(notifier, positions)
        finally:
            notifier.stop()
        pd = http.requests("/v2/enqueue")
        assert [r.reply.status for r in pd] == [500, 429, 200, 200]
        trigger, resolve = pd[2].json(), pd[3].json()
        assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
        assert trigger["dedup_key"] == resolve["dedup_key"] == critical["fingerprint"]
        slack = [r.json() for r in http.requests(SLACK_SECRET_PATH)]
        assert [s["text"].split(" ")[:2] for s in slack] == [["<!here>", "[FIRING]"], ["[RESOLVED]", "CRITICAL"]]
        [mail] = smtp.messages()
        assert mail.message["Subject"].startswith("[tailwatch] [FIRING] HIGH factory-slow-responses")
        log = notifier.stderr
        assert '"channels skipped"' in log and "SLACK_MONITORING_WEBHOOK is not set" in log
        assert "slack-alerts" in log  # named by a rule, not configured: reported
        ledger = await ledger_deliveries(kafka_settings)
        assert Counter(r.key for r in ledger) == keys_of(pd) + keys_of(http.requests(SLACK_SECRET_PATH)) + \
            Counter([mail.message["X-Tailwatch-Delivery-Key"]])
        assert len(ledger) == 5 and {r.outcome for r in ledger} == {"delivered"}
        assert next(r for r in ledger if r.channel == "pagerduty" and r.kind == "trigger").attempts == 3

        # A second notifier in a new consumer group reads every alert again: the ledger's read offsets stop every
        # re-send.
        again = start(kafka_settings, channels, channel_env(http, smtp), tmp_path, app_id="another-group")
        try:
            await settle(again, positions)
        finally:
            again.stop()
        assert len(http.requests()) == 6 and len(smtp.messages()) == 1
        assert "\"already_handled\":5" in again.stderr, again.stderr  # every event, the duplicate one too


async def test_sigkill_mid_delivery_then_restart_no_duplicate_no_loss(kafka_settings: KafkaSettings,
                                                                      tmp_path: Path) -> None:
    await kill_and_restart(kafka_settings, tmp_path)


@pytest.mark.kafka
async def test_sigkill_mid_delivery_on_apache_kafka(apache_kafka: Any, tmp_path: Path) -> None:
    """The same on Apache Kafka: real offset commits, a real compacted ledger, the killed member's session
    expiring before the restarted notifier gets the partitions."""
    await kill_and_restart(KafkaSettings(apache_kafka.bootstrap, f"n{uuid.uuid4().hex[:10]}", 4, 1), tmp_path)


async def kill_and_restart(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    events = [alert_event(endpoint=f"/api/e{i}", channels=["slack-critical"]) for i in range(12)]
    events += [alert_event(endpoint=f"/api/e{i}", channels=["slack-critical"], change="resolved",
                           window_end="2026-03-01T10:30:00Z") for i in range(0, 12, 3)]
    positions = await publish(kafka_settings, events)
    with HttpReceiver() as http:
        # Five answered (slowly), the sixth held in flight: the notifier is killed while it waits.
        release = threading.Event()
        http.program(SLACK_SECRET_PATH, *[Reply(delay_s=0.2)] * 5, Reply(hold=release))
        channels = channel_file(tmp_path)
        notifier = start(kafka_settings, channels, channel_env(http, None), tmp_path)
        try:
            await http.wait_for_async(6, path=SLACK_SECRET_PATH, timeout_s=90)
            notifier.kill()
        finally:
            notifier.stop()
        held = http.requests(SLACK_SECRET_PATH)[5]
        restarted = start(kafka_settings, channels, channel_env(http, None), tmp_path)
        try:
            await settle(restarted, positions, timeout_s=180)
        finally:
            release.set()
            restarted.stop()
        await wait_until(lambda: held.done, timeout_s=10)
        assert not held.answered  # its sender was gone when the answer was due
        delivered = keys_of(http.requests(SLACK_SECRET_PATH))
        assert len(delivered) == 16 and set(delivered.values()) == {1}, delivered
        assert held.headers["X-Tailwatch-Delivery-Key"] in delivered  # sent again after the restart
        ledger = await ledger_deliveries(kafka_settings)
        assert sorted({record.key for record in ledger}) == sorted(delivered)


async def test_secrets_never_appear_in_logs_dead_letters_or_commands(kafka_settings: KafkaSettings,
                                                                     tmp_path: Path) -> None:
    positions = await publish(kafka_settings, [b'{"v": 1, "rule": "half an alert"}',
                                               alert_event(channels=["pagerduty", "slack-critical", "email"])])
    with HttpReceiver() as http, SmtpReceiver(auth={SMTP_USER: "not-the-password"}) as smtp:
        http.program(SLACK_SECRET_PATH, Reply(404, f"no_service {http.url(SLACK_SECRET_PATH)}".encode()))
        env = channel_env(http, smtp) | {"PAGERDUTY_EVENTS_URL": f"http://127.0.0.1:1/{PD_KEY}/enqueue"}
        channels = channel_file(tmp_path, max_attempts=2)
        notifier = start(kafka_settings, channels, env | {"TAILWATCH_LOG_LEVEL": "DEBUG"}, tmp_path)
        try:
            await settle(notifier, positions)
        finally:
            notifier.stop()
        letters = [NotificationDeadLetter.model_validate(m.value) for m in
                   await read_topic(kafka_settings.bootstrap or "", kafka_settings.topic("notify.deadletter"))]
        assert sorted(letter.channel or "" for letter in letters) == ["", "email", "pagerduty", "slack-critical"]
        invalid = next(letter for letter in letters if letter.channel is None)
        assert invalid.reason.startswith("invalid alert event: state: Field required")
        assert invalid.excerpt == '{"v": 1, "rule": "half an alert"}'
        listing = subprocess.run([sys.executable, "-m", "agents.cli", "channels", "list", "--channels",
                                  str(channels)], capture_output=True, text=True, env={**os.environ, **env})
        http.program(SLACK_SECRET_PATH, Reply(404, f"no_service {http.url(SLACK_SECRET_PATH)}".encode()))
        tests = [subprocess.run([sys.executable, "-m", "agents.cli", "channels", "test", name, "--channels",
                                 str(channels)], capture_output=True, text=True, env={**os.environ, **env})
                 for name in ("slack-critical", "pagerduty", "email")]
        assert listing.returncode == 0 and "$SLACK_CRITICAL_WEBHOOK = http://127.0.0.1" in listing.stdout
        assert [t.returncode for t in tests] == [1, 1, 1]
        assert "slack-critical: FAILED (HTTP 404: no_service" in tests[0].stdout
        everything = "\n".join([notifier.stderr, listing.stdout, listing.stderr,
                                *(t.stdout + t.stderr for t in tests),
                                *(orjson.dumps(letter.model_dump()).decode() for letter in letters)])
        assert "HTTP 404" in everything and "SMTP 535" in everything and "connection failed" in everything
        for secret in SECRETS:
            assert secret not in everything
