"""`tailwatch topics create|list`: the one-shot that creates every topic before the services start."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from agents.settings import KafkaSettings


def tailwatch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TAILWATCH_KAFKA_BOOTSTRAP"}
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], capture_output=True, text=True, timeout=90,
                          env=env)


@pytest.mark.integration
def test_create_makes_every_topic_once(kafka_settings: KafkaSettings) -> None:
    assert kafka_settings.bootstrap
    prefix = kafka_settings.topic_prefix
    wanted = sorted(f"{prefix}.{name}" for name in ("logs", "deadletter", "metrics", "alerts", "silences", "probes",
                                                    "deliveries", "notify.deadletter"))
    listed = tailwatch("topics", "list", "--topic-prefix", prefix)
    assert sorted(orjson.loads(line)["name"] for line in listed.stdout.splitlines()) == wanted
    assert "the topics `create` would make" in listed.stderr
    before = tailwatch("topics", "list", "--bootstrap", kafka_settings.bootstrap, "--topic-prefix", prefix)
    assert [orjson.loads(line)["exists"] for line in before.stdout.splitlines()] == [False] * len(wanted)
    first = tailwatch("topics", "create", "--bootstrap", kafka_settings.bootstrap, "--topic-prefix", prefix)
    assert first.returncode == 0, first.stderr
    assert sorted(orjson.loads(first.stdout)["created"]) == wanted
    again = tailwatch("topics", "create", "--bootstrap", kafka_settings.bootstrap, "--topic-prefix", prefix)
    assert again.returncode == 0, again.stderr
    assert orjson.loads(again.stdout)["created"] == []
    assert sorted(orjson.loads(again.stdout)["existing"]) == wanted
    after = tailwatch("topics", "list", "--bootstrap", kafka_settings.bootstrap, "--topic-prefix", prefix)
    assert {orjson.loads(line)["name"]: orjson.loads(line)["exists"] for line in after.stdout.splitlines()} == \
        dict.fromkeys(wanted, True)


def test_create_needs_a_broker_address() -> None:
    result = tailwatch("topics", "create")
    assert result.returncode == 2
    assert "TAILWATCH_KAFKA_BOOTSTRAP" in result.stderr
