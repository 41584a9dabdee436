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
    wanted = sorted(f"{prefix}.{name}" for name in ("logs", "deadletter", "metrics", "metrics.service", "alerts",
                                                    "silences", "probes", "deliveries", "notify.deadletter"))
    # the worker's tables: Faust's names for their changelogs
    changelogs = [f"{prefix}-metrics-panes-changelog", f"{prefix}-metrics-service-panes-changelog"]
    wanted = sorted([*wanted, *changelogs])
    listed = tailwatch("topics", "list", "--topic-prefix", prefix)
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(row["name"] for row in rows) == wanted
    assert {row["name"] for row in rows if row["compacted"]} == {
        f"{prefix}.silences", f"{prefix}.deliveries", *changelogs}
    assert "the topics `create` would make" in listed.stderr
    before = tailwatch("topics", "list", "--bootstrap", kafka_settings.bootstrap, "--topic-prefix", prefix)
    assert [orjson.loads(line)["exists"] for line in before.stdout.splitlines()] == [False] * len(wanted)
    for command in (["topics", "create"], ["ingest", "--stdin"]):  # a cluster where tailwatch may not create topics
        refused = tailwatch(*command, "--bootstrap", kafka_settings.bootstrap, "--topic-prefix", prefix,
                            "--no-create-topics")
        assert refused.returncode == 3, refused.stderr
        assert "topics missing (kafka.create_topics is false" in refused.stderr
        assert f"{prefix}.logs" in refused.stderr and "Traceback" not in refused.stderr
    still = tailwatch("topics", "list", "--bootstrap", kafka_settings.bootstrap, "--topic-prefix", prefix)
    assert not any(orjson.loads(line)["exists"] for line in still.stdout.splitlines())
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


def test_the_worker_changelogs_are_compacted_within_an_hour() -> None:
    """A restarted worker restores its tables from their changelogs: on Apache Kafka the state-topic configs make
    compaction run (hourly segments, compacted within an hour), so a restore reads the live keys and about an hour
    of writes, not every checkpoint ever written."""
    from agents.commands.worker import worker_topic_specs
    from agents.topics import STATE_TOPIC_CONFIGS

    changelogs = [spec for spec in worker_topic_specs(KafkaSettings("127.0.0.1:9", "tw", 4, 1))
                  if spec.name.endswith("-changelog")]
    assert len(changelogs) == 2
    for spec in changelogs:
        assert spec.topic_configs() == {"cleanup.policy": "compact", **STATE_TOPIC_CONFIGS}
        assert spec.topic_configs()["segment.ms"] == spec.topic_configs()["max.compaction.lag.ms"] == "3600000"
