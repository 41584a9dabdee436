"""The README's subscriber example (section "Subscribing"), run as written: its code block is executed, and its
`main` consumes real rule and probe alerts from a topic on the embedded broker."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.settings import KafkaSettings
from agents.topics import TopicSpec, ensure_topics
from tests.alert_samples import probe_alerts, rules_alerts, service_alerts

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Subscribing"):]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "no python block in the Subscribing section"
    return match.group(1)


def load_example(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(ROOT)  # the example opens schemas/json/alert-event.json relative to a checkout
    namespace: dict[str, Any] = {"__name__": "readme_subscriber"}  # not __main__: define, do not run
    exec(compile(readme_example(), "README.md#subscribing", "exec"), namespace)
    return namespace


def test_the_example_handles_rule_and_probe_alerts(monkeypatch: pytest.MonkeyPatch) -> None:
    handle = load_example(monkeypatch)["handle"]
    rules, probes = rules_alerts() + service_alerts(), probe_alerts()
    lines = [handle(alert) for alert in rules + probes]
    muted = [a["rule"] for a, line in zip(rules + probes, lines, strict=True) if line is None]
    # the error-rate alerts that fire while factory-service-down fires are muted; resolves never are
    assert muted == ["factory-success-rate", "factory-error-rate", "factory-high-error-rate"]
    assert all(a["inhibited_by"] == ["factory-service-down"] for a in rules if a["rule"] in muted
               and a["state"] == "firing")
    assert lines[-4:-2] == ["firing MEDIUM service-busy gateway: gateway: 60 requests a minute",
                            "resolved MEDIUM service-busy gateway: gateway: 30 requests a minute"]
    assert lines[-2] == ("firing CRITICAL factory-uptime-probe 127.0.0.1:8080/health: http://127.0.0.1:8080/health "
                         "is down: 2 consecutive failed checks (no response within 10 s)")
    assert lines[-1].startswith("resolved CRITICAL factory-uptime-probe 127.0.0.1:8080/health: ")
    bad = {**probes[0], "state": "maybe"}
    with pytest.raises(Exception, match="'maybe' is not one of"):
        handle(bad)


@pytest.mark.integration
async def test_the_example_consumes_the_alerts_topic(kafka_settings: KafkaSettings,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    example = load_example(monkeypatch)
    bootstrap = kafka_settings.bootstrap
    assert bootstrap
    topic = kafka_settings.topic("alerts")
    await ensure_topics(bootstrap, [TopicSpec(topic, 1)])
    alerts = rules_alerts() + service_alerts() + probe_alerts()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for alert in alerts:
            await producer.send_and_wait(topic, orjson.dumps(alert), key=alert["fingerprint"].encode())
    finally:
        await producer.stop()
    expected = [line for line in map(example["handle"], alerts) if line is not None]
    assert len(expected) == len(alerts) - 3
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        task = asyncio.create_task(example["main"](topic, bootstrap))
        try:
            for _ in range(600):  # up to 60 s: the consumer joins its group, then reads from the oldest alert
                if out.getvalue().count("\n") >= len(expected) or task.done():
                    break
                await asyncio.sleep(0.1)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert out.getvalue().splitlines() == expected
