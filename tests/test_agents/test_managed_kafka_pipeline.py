"""The whole pipeline on a managed-style Apache Kafka: `tailwatch run` (ingest, then a worker and a notifier as
child processes) with one tailwatch.yaml pointing at the SASL_SSL listener (SCRAM-SHA-512, the test CA, the
password from `${ENV}`) gives the alerts `tailwatch replay` gives and delivers them to a loopback receiver; the
password appears in no output. Then `alerts tail` and `replay --topic` read the same topics over mutual TLS."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.kafka_tier import ApacheKafka
from tests.receivers import HttpReceiver
from tests.reliability_channels_support import incident_capture

pytestmark = pytest.mark.kafka

SLACK_ALERTS_PATH = "/services/T0001/B0002/alerts"
SLACK_MONITORING_PATH = "/services/T0001/B0003/monitoring"


def channel_file(path: Path) -> Path:
    retry = "retry: {max_attempts: 5, initial: 100ms, max: 1s, timeout: 3s}"
    path.write_text(f"""version: 1
channels:
  slack-alerts: {{type: slack, webhook_url: $SLACK_ALERTS_WEBHOOK, group_wait: 0s, {retry}}}
  slack-monitoring: {{type: slack, webhook_url: $SLACK_MONITORING_WEBHOOK, group_wait: 0s,
                     rate_limit: {{max: 50, per: 1s}}, {retry}}}
""")
    return path


def sasl_config(kafka: ApacheKafka, path: Path) -> Path:
    path.write_text(f"""version: 1
kafka:
  bootstrap: {kafka.sasl_ssl_bootstrap}
  security:
    protocol: SASL_SSL
    ssl:
      ca_file: {kafka.ca_file}
    sasl:
      mechanism: SCRAM-SHA-512
      username: {kafka.scram_user}
      password: ${{KAFKA_PASSWORD}}
""")
    return path


def mtls_config(kafka: ApacheKafka, path: Path) -> Path:
    (path.parent / "key-password").write_text(kafka.client_key_password + "\n")
    path.write_text(f"""version: 1
kafka:
  bootstrap: {kafka.ssl_bootstrap}
  create_topics: false
  security:
    protocol: SSL
    ssl:
      ca_file: {kafka.ca_file}
      cert_file: {kafka.client_cert}
      key_file: {kafka.client_key}
      key_password_file: key-password
""")
    return path


def tailwatch(*args: str, env: dict[str, str], timeout_s: float = 280) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], capture_output=True, text=True,
                          timeout=timeout_s, env=env, stdin=subprocess.DEVNULL)


def alerts_of(stdout: str, keep_input: bool = False) -> list[dict[str, Any]]:
    alerts = [orjson.loads(line) for line in stdout.splitlines()]
    if not keep_input:
        for alert in alerts:
            alert["provenance"].pop("input")
    return alerts


def test_pipeline_over_sasl_ssl_and_reads_over_mutual_tls(apache_kafka: ApacheKafka, tmp_path: Path) -> None:
    capture = incident_capture(tmp_path / "capture.jsonl", minutes=12)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILWATCH_", "SLACK_"))}
    replay = tailwatch("replay", str(capture), env=base_env)
    assert replay.returncode == 0, replay.stderr
    expected = alerts_of(replay.stdout)
    routed = Counter(channel for alert in expected for channel in alert["channels"])
    assert routed["slack-alerts"] >= 1 and routed["slack-monitoring"] >= 1, routed
    prefix = f"mk{uuid.uuid4().hex[:8]}"
    config = sasl_config(apache_kafka, tmp_path / "tailwatch.yaml")
    with HttpReceiver() as http:
        env = {**base_env, "KAFKA_PASSWORD": apache_kafka.scram_password,
               "SLACK_ALERTS_WEBHOOK": http.url(SLACK_ALERTS_PATH),
               "SLACK_MONITORING_WEBHOOK": http.url(SLACK_MONITORING_PATH)}
        live = tailwatch("run", "--from", str(capture), "--exit-when-done", "--config", str(config),
                         "--topic-prefix", prefix, "--channels", str(channel_file(tmp_path / "channels.yaml")),
                         env=env)
        assert live.returncode == 0, live.stderr[-4000:]
        # --exit-when-done waits until the notifier has every alert's delivery outcome
        delivered = {channel: len(http.answered(path)) for channel, path in
                     (("slack-alerts", SLACK_ALERTS_PATH), ("slack-monitoring", SLACK_MONITORING_PATH))}
    assert alerts_of(live.stdout) == expected
    assert all(delivered[channel] >= routed[channel] for channel in delivered), (delivered, routed)
    assert apache_kafka.scram_password not in live.stdout + live.stderr
    assert "input fully processed" in live.stderr and "notifier ready" in live.stderr

    # The same topics, read by other commands over the mutual-TLS listener (create_topics: false in that file).
    (tmp_path / "mtls").mkdir()
    mtls = mtls_config(apache_kafka, tmp_path / "mtls" / "tailwatch.yaml")
    tail = tailwatch("alerts", "tail", "--config", str(mtls), "--topic-prefix", prefix, env=base_env)
    assert tail.returncode == 0, tail.stderr
    assert sorted(map(orjson.dumps, alerts_of(tail.stdout, keep_input=True))) == \
        sorted(map(orjson.dumps, alerts_of(live.stdout, keep_input=True)))
    from_topic = tailwatch("replay", "--topic", "--config", str(mtls), "--topic-prefix", prefix, env=base_env)
    assert from_topic.returncode == 0, from_topic.stderr
    assert len(alerts_of(from_topic.stdout, keep_input=True)) == len(expected)
    assert apache_kafka.client_key_password not in tail.stderr + from_topic.stderr


@pytest.mark.parametrize("command", [["topics", "create"], ["alerts", "tail"], ["ingest", "--stdin"]])
def test_a_wrong_password_fails_fast_with_the_reason(apache_kafka: ApacheKafka, tmp_path: Path,
                                                     command: list[str]) -> None:
    config = sasl_config(apache_kafka, tmp_path / "tailwatch.yaml")
    wrong = f"wrong-{uuid.uuid4().hex}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TAILWATCH_")}, "KAFKA_PASSWORD": wrong}
    started = time.monotonic()
    result = tailwatch(*command, "--config", str(config), env=env, timeout_s=120)
    took = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    assert "refused tailwatch: authentication-failed: " in result.stderr, result.stderr[-2000:]
    assert wrong not in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert took < 30, took  # no retries: new attempts cannot fix a password


def test_an_unknown_ca_fails_fast_with_the_reason(apache_kafka: ApacheKafka, tmp_path: Path) -> None:
    config = sasl_config(apache_kafka, tmp_path / "tailwatch.yaml")
    config.write_text(config.read_text().replace(str(apache_kafka.ca_file), str(apache_kafka.unknown_ca_file)))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TAILWATCH_")},
           "KAFKA_PASSWORD": apache_kafka.scram_password}
    started = time.monotonic()
    result = tailwatch("worker", "--config", str(config), "--topic-prefix", f"ca{uuid.uuid4().hex[:8]}", env=env,
                       timeout_s=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "refused tailwatch: tls-verification-failed: " in result.stderr, result.stderr[-2000:]
    assert apache_kafka.scram_password not in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 30
