"""`tailwatch rules check` and `tailwatch alerts tail`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.settings import KafkaSettings
from agents.topics import TopicSpec, ensure_topics


def tailwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def test_rules_check_lists_the_default_rules_and_rejects_a_bad_file(tmp_path: Path) -> None:
    good = tailwatch("rules", "check")
    assert good.returncode == 0
    for name in ("factory-service-down", "d1-connection-failures", "factory-high-error-rate",
                 "factory-slow-responses", "d1-quota-warning", "factory-traffic-spike", "factory-404-spike"):
        assert f"  {name} " in good.stdout
    bad = tmp_path / "rules.yaml"
    bad.write_text("version: 1\nrules:\n  - name: x\n    condition: p95_ms >> 1\n    severity: HIGH\n")
    result = tailwatch("rules", "check", str(bad))
    assert result.returncode == 1
    assert f"{bad}:4: rule 'x', condition: unexpected '>'" in result.stderr


TWO_RULES = ("version: 1\nrules:\n  - name: x\n    condition: p95_ms > 1\n    severity: HIGH\n{x_extra}"
             "  - name: y\n    condition: p95_ms > 2\n    severity: HIGH\n{inhibit}")


@pytest.mark.parametrize(
    ("x_extra", "inhibit", "line", "message"),
    [
        ("    window: 1m\n    group_by: [endpoint]\n", "", 7,
         "rule 'x', group_by: only [service, endpoint] (per endpoint) or [service] (service-wide, on the service "
         "stage's merged panes) is supported"),
        ("", "inhibit:\n  - source: x\n    targets: [y]\n    equal: [service]\n", 12,
         "rule 'x', inhibit[0].equal: equal: [service] needs a group_by: [service] source: an endpoint rule's "
         "state lives in its own partition's worker"),
        ("    group_by: [service]\n", "inhibit:\n  - source: x\n    targets: [y]\n    equal: [service, endpoint]\n",
         13,
         "rule 'x', inhibit[0].equal: the source is a group_by: [service] rule, which has no endpoint: use "
         "equal: [service]"),
        ("", "inhibit:\n  - {source: x, targets: [y]}\n  - {source: x, targets: [z]}\n", 11,
         "rule 'z', inhibit[1]: no such rule"),
    ],
)
def test_rules_check_refuses_what_it_cannot_evaluate_with_file_and_line(tmp_path: Path, x_extra: str, inhibit: str,
                                                                        line: int, message: str) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text(TWO_RULES.format(x_extra=x_extra, inhibit=inhibit))
    result = tailwatch("rules", "check", str(bad))
    assert result.returncode == 1
    assert result.stderr.strip().endswith(f"{bad}:{line}: {message}"), result.stderr


@pytest.mark.integration
def test_alerts_tail_prints_the_alerts_topic(kafka_settings: KafkaSettings) -> None:
    bootstrap = kafka_settings.bootstrap
    assert bootstrap
    alert = {"rule": "factory-service-down", "state": "firing", "fingerprint": "abc"}

    async def publish() -> None:
        await ensure_topics(bootstrap, [TopicSpec(kafka_settings.topic("alerts"), 2)])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        await producer.send_and_wait(kafka_settings.topic("alerts"), orjson.dumps(alert), key=b"abc")
        await producer.stop()

    asyncio.run(publish())
    env = {**os.environ, "TAILWATCH_KAFKA_BOOTSTRAP": bootstrap, "TAILWATCH_TOPIC_PREFIX": kafka_settings.topic_prefix}
    result = tailwatch("alerts", "tail", env=env)
    assert result.returncode == 0, result.stderr
    assert [orjson.loads(line) for line in result.stdout.splitlines()] == [alert]


@pytest.mark.integration
async def test_alerts_tail_follow_starts_at_the_end_unless_from_beginning(kafka_settings: KafkaSettings) -> None:
    bootstrap = kafka_settings.bootstrap
    assert bootstrap
    topic = kafka_settings.topic("alerts")
    await ensure_topics(bootstrap, [TopicSpec(topic, 1)])  # one partition: the printed order is the published one
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    env = {**os.environ, "TAILWATCH_KAFKA_BOOTSTRAP": bootstrap, "TAILWATCH_TOPIC_PREFIX": kafka_settings.topic_prefix}

    async def publish(fingerprint: str) -> dict[str, str]:
        alert = {"rule": "factory-service-down", "state": "firing", "fingerprint": fingerprint}
        await producer.send_and_wait(topic, orjson.dumps(alert), key=fingerprint.encode())
        return alert

    async def follow(*flags: str) -> list[dict[str, str]]:
        """Start `alerts tail --follow`, publish one alert once it is following, return what it printed up to it."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agents.cli", "--log-level", "WARNING", "alerts", "tail", "--follow", *flags,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        assert proc.stdout is not None and proc.stderr is not None
        try:
            while b"following" not in (line := await asyncio.wait_for(proc.stderr.readline(), 60)):
                assert line, "alerts tail ended before following"
            new = await publish(f"new-{len(flags)}")
            printed = []
            while not printed or printed[-1] != new:
                printed.append(orjson.loads(await asyncio.wait_for(proc.stdout.readline(), 60)))
            return printed
        finally:
            proc.terminate()
            await proc.wait()

    try:
        old = await publish("old")
        assert await follow() == [{**old, "fingerprint": "new-0"}]  # the history is skipped
        assert [a["fingerprint"] for a in await follow("--from-beginning")] == ["old", "new-0", "new-1"]
    finally:
        await producer.stop()



def test_help_says_what_rules_and_replay_do() -> None:
    from agents.cli import COMMANDS

    assert "unit tests" in COMMANDS["rules"][1]  # `rules test`, not only `rules check`
    assert "alert events" in COMMANDS["replay"][1]  # its default output; panes only with --metrics
    help_text = " ".join(tailwatch("--help").stdout.split())
    assert "rules check rule files, or run rule unit tests" in help_text
