"""`tailwatch worker --web-port`: /metrics counts exactly what went through (records, late, dead letters, alert
transitions by rule and state, batches), and /health turns 503 while the broker is away and 200 once it is back;
`tailwatch run --web-port` serves the worker's, and its notifier's attempts and failures per channel."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import orjson
import pytest

from agents.alert_silences import silences_topic_spec
from agents.commands.ingest import log_topic_specs
from agents.commands.replay import replay_events
from agents.ingest import Ingestor
from agents.publisher import Publisher
from agents.rules_files import load_rules
from agents.settings import KafkaSettings
from agents.sources import file_chunks
from agents.topics import ensure_topics
from pipeline.metrics import snapshot
from pipeline.parsing import ParseStats
from pipeline.rules.engine import RuleEngine
from tests.kafka_tier import ApacheKafka, free_port
from tests.receivers import HttpReceiver, Reply
from tests.support import read_topic
from tests.test_agents.test_notify.test_notifier import SECRET_VARS
from tests.test_agents.test_silences_and_topic_replay import publish_raw
from tests.test_agents.worker_web import (
    DEFAULT_CHANNELS,
    Samples,
    WebWorker,
    by_label,
    incident_capture,
    parse_metrics,
    value,
    wait_for,
)

pytestmark = pytest.mark.integration

MALFORMED = b'{"outcome": "ok", "scriptName": nope}\n'
TRUNCATED = b'{"outcome": "ok", "scriptName": "foundation-gateway-production", "logs": [\n'


def scanned(lines: list[bytes]) -> list[bytes]:
    """The lines with a scanner's 404 (a new path each time) after every fifth, at that line's time."""
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        if i % 5 == 0:
            event = orjson.loads(line)
            out.append(orjson.dumps({
                "outcome": "ok", "scriptName": event["scriptName"], "eventTimestamp": event["eventTimestamp"],
                "logs": [], "exceptions": [], "event": {"request": {"url": f"https://api.example.com/scan{i // 5}.php",
                                                                    "method": "GET", "headers": {}},
                                                        "response": {"status": 404}}}) + b"\n")
    return out


def crafted_capture(path: Path) -> Path:
    """The incident capture with scanner 404s, one malformed object in the middle and a cut one at the end."""
    lines = scanned(incident_capture(path.with_suffix(".clean")).read_bytes().splitlines(keepends=True))
    middle = len(lines) // 2
    path.write_bytes(b"".join([*lines[:middle], MALFORMED, *lines[middle:], TRUNCATED]))
    return path


async def ingest(settings: KafkaSettings, capture: Path) -> tuple[Publisher, ParseStats]:
    bootstrap = settings.bootstrap
    assert bootstrap
    await ensure_topics(bootstrap, log_topic_specs(settings))
    publisher = Publisher(bootstrap, settings.logs_topic, settings.deadletter_topic, idempotent=False)
    await publisher.start()
    try:
        stats = await Ingestor(publisher, settings.partitions).ingest_chunks(str(capture), file_chunks(capture),
                                                                             stream="files")
    finally:
        await publisher.stop()
    return publisher, stats


def test_metrics_counters_match_the_input(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    capture = crafted_capture(tmp_path / "capture.jsonl")
    rules = load_rules()
    totals = ParseStats()
    args = argparse.Namespace(inputs=[str(capture)], lateness_ms=10_000, route=[])
    panes, replay_alerts = replay_events(args, totals, RuleEngine(rules.compiled, rules.rule_file, rules.sha256))
    snapshots = [snapshot(pane) for pane in panes]
    late = sum(s["late_dropped"] for s in snapshots)
    assert late > 0, "the capture has records beyond the allowed lateness"
    assert totals.rejected == 2
    assert len(replay_alerts) >= 5
    folded = Counter()
    for snap in snapshots:
        if snap["endpoint"] == "<unmatched>":
            folded[snap["service"]] += snap["total"]
    assert sum(folded.values()) > 500  # the scans, on one endpoint per service

    async def scenario() -> None:
        # a silence record RE2 does not accept, on the topic before the worker starts: skipped and counted
        await ensure_topics(kafka_settings.bootstrap or "", [silences_topic_spec(kafka_settings)])
        refused = {"v": 1, "id": "refused", "matchers": [{"name": "endpoint", "op": "=~", "value": r"(x)\1"}],
                   "starts_at": "2000-01-01T00:00:00Z", "ends_at": "2100-01-01T00:00:00Z", "created_by": "t",
                   "comment": "c", "created_at": "2026-01-01T00:00:00Z"}
        await publish_raw(kafka_settings, {"refused": refused})
        worker = WebWorker(kafka_settings, tmp_path / "worker")
        try:
            await worker.wait_ready()
            publisher, stats = await ingest(kafka_settings, capture)
            assert stats.records == totals.records
            assert publisher.dead_letters_sent >= 2

            async def caught_up() -> bool:
                samples = await worker.metrics()
                return (value(samples, "tailwatch_records_in_total") >= stats.records
                        and value(samples, "tailwatch_snapshots_total") >= len(snapshots)
                        and sum(by_label(samples, "tailwatch_dead_letters_total").values())
                        >= publisher.dead_letters_sent)

            await wait_for(caught_up, 90, "the worker to process the input")
            alerts = await read_topic(kafka_settings.bootstrap or "", kafka_settings.topic("alerts"),
                                      until=len(replay_alerts), timeout_s=30)
            samples = await worker.metrics()
            status, body = await worker.health()
        finally:
            worker.kill()

        assert value(samples, "tailwatch_records_in_total") == stats.records == totals.records
        assert value(samples, "tailwatch_late_records_total") == late
        assert value(samples, "tailwatch_snapshots_total") == len(snapshots)
        dead = by_label(samples, "tailwatch_dead_letters_total")
        assert sum(dead.values()) == publisher.dead_letters_sent
        assert dead[(("kind", "malformed_json"),)] == 1
        assert dead[(("kind", "truncated_object"),)] == 1
        published = Counter((m.value["rule"], m.value["state"]) for m in alerts)
        assert published == Counter((a["rule"], a["state"]) for a in replay_alerts)
        counted = {(dict(labels)["rule"], dict(labels)["state"]): v
                   for labels, v in by_label(samples, "tailwatch_alert_transitions_total").items()}
        assert counted == dict(published)
        # One processing-time observation per logs-topic message: every batch ingest sent.
        assert value(samples, "tailwatch_batch_processing_seconds_count") == publisher.batches_sent
        assert value(samples, "tailwatch_panes_held", state="open") == 0  # the input ended: every pane closed
        assert 0 < value(samples, "tailwatch_panes_held", state="closed") <= len(snapshots)
        assert value(samples, "tailwatch_partitions_assigned") == kafka_settings.partitions
        counted_folded = {dict(labels)["service"]: v for labels, v
                          in by_label(samples, "tailwatch_folded_records_total").items()
                          if dict(labels)["endpoint"] == "<unmatched>"}
        assert counted_folded == dict(folded)
        # what a long-running worker holds, for its operator to watch (see `python -m bench soak`)
        assert value(samples, "tailwatch_producers_held") == 0  # the ingest ended: no producer is running
        assert value(samples, "tailwatch_checkpoint_bytes") > 0
        assert value(samples, "tailwatch_alert_states") >= 0
        assert value(samples, "tailwatch_invalid_silence_records_total") == 1
        assert value(samples, "tailwatch_silences") == 0
        assert status == 200, body
        assert body["status"] == "healthy" and all(body["checks"].values())
        assert body["details"]["last_record"]["seen"] is True

    asyncio.run(scenario())


def test_health_without_channels_is_degraded(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    async def scenario() -> tuple[int, dict]:
        worker = WebWorker(kafka_settings, tmp_path / "worker", channels="pagerduty")
        try:
            await worker.wait_ready()
            return await worker.health()
        finally:
            worker.kill()

    status, body = asyncio.run(scenario())
    assert status == 503
    assert body["status"] == "degraded"
    assert body["checks"] == {"broker": True, "agents": True, "consumer_lag": True, "last_record": True,
                              "channels": False}
    assert "slack-critical" in body["details"]["channels"]["missing"]


@pytest.mark.kafka
def test_health_follows_the_broker(apache_kafka: ApacheKafka, tmp_path: Path) -> None:
    settings = KafkaSettings(apache_kafka.bootstrap, f"h{int(time.time() * 1000) % 10**9}", 4, 1)
    timeline: list[tuple[str, int, dict]] = []

    async def status_is(expected: int, stage: str) -> None:
        async def check() -> bool:
            status, body = await worker.health()
            timeline.append((stage, status, body["checks"]))
            return status == expected

        await wait_for(check, 120, f"/health {expected} ({stage})", pause_s=0.5)

    async def scenario() -> None:
        nonlocal worker
        await ensure_topics(settings.bootstrap or "", log_topic_specs(settings))
        worker = WebWorker(settings, tmp_path / "worker")
        try:
            await worker.wait_ready()
            await status_is(200, "up")
            try:
                apache_kafka.stop()
                started = time.monotonic()
                await status_is(503, "broker stopped")
                down_after = time.monotonic() - started
                status, body = await worker.health()
                assert status == 503 and body["checks"]["broker"] is False, body
                assert body["details"]["broker"]["error"]
            finally:
                apache_kafka.start()
            started = time.monotonic()
            await status_is(200, "broker back")
            up_after = time.monotonic() - started
            assert worker.process.poll() is None, "the worker survived the outage"
            print(f"/health: 503 {down_after:.1f}s after the stop, 200 {up_after:.1f}s after the start")
        finally:
            worker.kill()

    worker: WebWorker
    asyncio.run(scenario())
    stages = [stage for stage, _, _ in timeline]
    assert stages[0] == "up" and stages[-1] == "broker back"


SLACK_ALERTS_PATH = "/services/T0001/B0002/alerts"
SLACK_MONITORING_PATH = "/services/T0001/B0003/monitoring"


def slack_channel_file(path: Path) -> Path:
    """The two Slack channels the incident capture's alerts go to (their webhooks from the environment)."""
    retry = "retry: {max_attempts: 5, initial: 100ms, max: 1s, timeout: 3s}"
    path.write_text(f"""version: 1
channels:
  slack-alerts:
    type: slack
    webhook_url: $SLACK_ALERTS_WEBHOOK
    group_wait: 0s
    {retry}
  slack-monitoring:
    type: slack
    webhook_url: $SLACK_MONITORING_WEBHOOK
    group_wait: 0s
    rate_limit: {{max: 50, per: 1s}}
    {retry}
""")
    return path


def free_port_pair() -> int:
    """A free port P whose neighbour P + 1 is free too (`run`'s default notifier port)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two free neighbouring ports")


def per_channel(samples: Samples, name: str) -> dict[str, float]:
    return {dict(labels)["channel"]: v for labels, v in by_label(samples, name).items()}


def test_run_serves_health_and_metrics(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    """`tailwatch run --web-port P` passes the web options to its worker: /metrics counts the run's input; and its
    notifier serves /metrics on P + 1: the notification attempts and failures per channel."""
    capture = incident_capture(tmp_path / "capture.jsonl", minutes=12)
    totals = ParseStats()
    rules = load_rules()
    _, replay_alerts = replay_events(argparse.Namespace(inputs=[str(capture)], lateness_ms=10_000, route=[]),
                                     totals, RuleEngine(rules.compiled, rules.rule_file, rules.sha256))
    routed = Counter(channel for alert in replay_alerts for channel in alert["channels"])
    assert routed["slack-alerts"] >= 1 and routed["slack-monitoring"] >= 1, routed
    port = free_port_pair()
    with HttpReceiver() as http:
        http.program(SLACK_MONITORING_PATH, Reply(500, b"error"))  # one failed attempt, then retried
        env = {**{k: v for k, v in os.environ.items() if k not in SECRET_VARS},
               "TAILWATCH_KAFKA_BOOTSTRAP": kafka_settings.bootstrap or "", "TAILWATCH_CHANNELS": DEFAULT_CHANNELS,
               "SLACK_ALERTS_WEBHOOK": http.url(SLACK_ALERTS_PATH),
               "SLACK_MONITORING_WEBHOOK": http.url(SLACK_MONITORING_PATH)}
        process = subprocess.Popen(
            [sys.executable, "-m", "agents.cli", "--log-level", "WARNING", "run", "--from", str(capture),
             "--topic-prefix", kafka_settings.topic_prefix, "--web-port", str(port), "--web-bind", "127.0.0.1",
             "--channels", str(slack_channel_file(tmp_path / "channels.yaml"))],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def received() -> dict[str, int]:
            return {channel: len(http.requests(path)) for channel, path in
                    (("slack-alerts", SLACK_ALERTS_PATH), ("slack-monitoring", SLACK_MONITORING_PATH))}

        async def scrape(session: aiohttp.ClientSession, url: str) -> Samples | None:
            assert process.poll() is None, "tailwatch run exited"
            try:
                async with session.get(url) as response:
                    return parse_metrics(await response.text()) if response.status == 200 else None
            except aiohttp.ClientError:
                return None

        async def scenario() -> tuple[int, dict, float, Samples]:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                async def processed() -> bool:
                    samples = await scrape(session, f"http://127.0.0.1:{port}/metrics")
                    return samples is not None and value(samples, "tailwatch_records_in_total") >= totals.records

                async def delivered() -> bool:  # every alert reached its channel, the failed attempt retried
                    return all(len(http.answered(path)) >= routed[channel] + (channel == "slack-monitoring")
                               for channel, path in (("slack-alerts", SLACK_ALERTS_PATH),
                                                     ("slack-monitoring", SLACK_MONITORING_PATH)))

                await wait_for(processed, 120, "tailwatch run's worker to process the capture", pause_s=0.5)
                await wait_for(delivered, 120, "tailwatch run's notifier to deliver the alerts", pause_s=0.5)
                notifier: Samples | None = None

                async def counted() -> bool:  # the notifier's counters equal the requests the receiver got
                    nonlocal notifier
                    before = received()
                    notifier = await scrape(session, f"http://127.0.0.1:{port + 1}/metrics")
                    return notifier is not None and before == received() == per_channel(
                        notifier, "tailwatch_notification_attempts_total")

                await wait_for(counted, 30, "the notifier's /metrics to count every attempt", pause_s=0.5)
                assert notifier is not None
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    records_in = value(parse_metrics(await response.text()), "tailwatch_records_in_total")
                async with session.get(f"http://127.0.0.1:{port}/health") as response:
                    return response.status, await response.json(), records_in, notifier

        try:
            status, body, records_in, notifier = asyncio.run(scenario())
        finally:
            process.send_signal(signal.SIGINT)  # run stops its worker and notifier on the way out
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    assert records_in == totals.records
    assert status == 200 and body["status"] == "healthy", body
    attempts = per_channel(notifier, "tailwatch_notification_attempts_total")
    assert attempts["slack-alerts"] >= routed["slack-alerts"]
    assert attempts["slack-monitoring"] >= routed["slack-monitoring"] + 1  # and the retry
    assert per_channel(notifier, "tailwatch_notification_failures_total") == {"slack-monitoring": 1.0}
