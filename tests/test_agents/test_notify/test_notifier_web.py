"""`tailwatch notify --web-port`: /metrics counts the attempts and failures per channel; /health answers."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.embedded_broker import free_port
from agents.notify.process import NotifierProcess
from agents.settings import KafkaSettings
from tests.alert_samples import alert_event
from tests.receivers import HttpReceiver, Reply
from tests.test_agents.test_notify.channels import channel_env, channel_file
from tests.test_agents.test_notify.test_notifier import SECRET_VARS, publish, settle

pytestmark = pytest.mark.integration


def samples(text: str, name: str) -> dict[str, float]:
    return {sample.labels["channel"]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name}


async def test_notifier_metrics_count_attempts_and_failures_per_channel(kafka_settings: KafkaSettings,
                                                                        tmp_path: Path) -> None:
    positions = await publish(kafka_settings, [alert_event()])  # CRITICAL: pagerduty and slack-critical
    port = free_port()
    with HttpReceiver() as http:
        http.program("/v2/enqueue", Reply(500, b"error"), Reply(429, b"slow down", {"Retry-After": "1"}))
        env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS} | channel_env(http, None)
        notifier = NotifierProcess(kafka_settings, str(channel_file(tmp_path)), str(tmp_path / "data"),
                                   relay=False, env=env, extra=["--web-port", str(port)])
        try:
            await settle(notifier, positions)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert response.status == 200
                    text = await response.text()
                async with session.get(f"http://127.0.0.1:{port}/health") as response:
                    health = await response.json()
                    status = response.status
        finally:
            notifier.stop()
    assert samples(text, "tailwatch_notification_attempts_total") == {"pagerduty": 3.0, "slack-critical": 1.0}
    assert samples(text, "tailwatch_notification_failures_total") == {"pagerduty": 2.0}
    # one alert open (its state) and its partition's read offset; its delivery records were tombstoned
    held = [line for line in text.splitlines() if line.startswith("tailwatch_ledger_records_held ")]
    assert held == ["tailwatch_ledger_records_held 2.0"], held
    assert status == 200, health
    assert health["checks"]["broker"] and health["checks"]["agents"] and health["checks"]["channels"]
    assert "pagerduty" in health["details"]["channels"]["configured"]
