"""The service stage scaled out on Apache Kafka: two `tailwatch worker`s in one group split the logs partitions and
the metrics partitions (the service stage is keyed by service), and together publish the service snapshots and
the alerts — service alerts, and endpoint alerts a service rule inhibits, held and released by the service stage —
that one worker publishes, and that replay gives. One of two workers killed (SIGKILL) mid-stream: the other
resumes both stages from the changelogs, and no service snapshot or alert is lost, different or repeated."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from agents.commands.replay import replay_events
from agents.rules_files import DEFAULT_RULES, load_rules
from agents.settings import KafkaSettings
from pipeline.parsing import ParseStats
from pipeline.rules.engine import RuleEngine
from pipeline.service import ServicePaneEvent, service_partition, service_snapshot
from tests.captures import canonical
from tests.kafka_tier import ApacheKafka
from tests.support import read_topic
from tests.test_agents.test_scale_out import PARTITIONS, assigned, partitions_of, settings_on, wait_done
from tests.test_agents.test_worker_restart import trickle
from tests.test_agents.worker_web import WebWorker, by_label, incident_capture, value, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

ServiceKey = tuple[str, str]
SERVICE_RULES = [
    {"name": "svc-errors", "group_by": ["service"], "condition": "error_rate > 0.1", "for": "1m",
     "severity": "HIGH", "channels": ["slack-alerts"]},
    {"name": "svc-slow", "group_by": ["service"], "condition": "p95_ms > 800", "for": "2m",
     "severity": "MEDIUM", "channels": ["slack-monitoring"]},
]
# While the service's error rate is high, its endpoints' error alerts are held by stage 1 and released by stage 2
# marked inhibited: one page for the service.
SERVICE_INHIBIT = {"source": "svc-errors", "targets": ["factory-error-rate", "factory-high-error-rate"],
                   "equal": ["service"]}


def service_rules(path: Path) -> Path:
    """The default rules and two service-wide rules, one of them inhibiting endpoint rules."""
    data = yaml.safe_load(DEFAULT_RULES.read_text())
    data["rules"] += SERVICE_RULES
    data["inhibit"].append(SERVICE_INHIBIT)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def alert_canonical(alert: dict[str, Any], live: bool) -> bytes:
    """An alert without `provenance.input`, after checking it is there exactly for a live endpoint alert (the
    logs offsets that fed its window; a service pane has none)."""
    alert = {**alert, "provenance": dict(alert["provenance"])}
    assert (alert["provenance"].pop("input") is not None) == (live and "endpoint" in alert["labels"]), alert
    return canonical(alert)


def replayed(capture: Path, rules_path: Path) -> tuple[dict[ServiceKey, bytes], list[bytes]]:
    """What the workers must publish, by replay: service snapshots by (service, window start), sorted alerts."""
    rules = load_rules(str(rules_path))
    args = argparse.Namespace(inputs=[str(capture)], lateness_ms=10_000, route=[])
    events: list[ServicePaneEvent] = []
    _panes, alerts = replay_events(args, ParseStats(), RuleEngine(rules.compiled, rules.rule_file, rules.sha256),
                                   service_events=events)
    snapshots = {(e.service, s["window_start"]): canonical(s) for e, s in ((e, service_snapshot(e)) for e in events)}
    return snapshots, sorted(alert_canonical(alert, live=False) for alert in alerts)


async def published(settings: KafkaSettings) -> tuple[dict[ServiceKey, set[bytes]], list[bytes]]:
    bootstrap = settings.bootstrap or ""
    snapshots = await read_topic(bootstrap, settings.topic("metrics.service"), idle_s=3, timeout_s=120)
    alerts = await read_topic(bootstrap, settings.topic("alerts"), idle_s=2, timeout_s=60)
    versions: dict[ServiceKey, set[bytes]] = {}
    for message in snapshots:
        assert message.key == message.value["service"].encode()
        versions.setdefault((message.value["service"], message.value["window_start"]), set()).add(
            canonical(message.value))
    return versions, sorted(alert_canonical(m.value, live=True) for m in alerts)


def assert_same(live: dict[ServiceKey, set[bytes]], alerts: list[bytes], snapshots: dict[ServiceKey, bytes],
                expected_alerts: list[bytes]) -> None:
    assert set(live) == set(snapshots), (f"{len(set(snapshots) - set(live))} service panes lost, "
                                         f"{len(set(live) - set(snapshots))} invented")
    differing = [key for key, versions in live.items() if versions != {snapshots[key]}]
    assert differing == [], f"{len(differing)} service panes differ, e.g. {differing[:3]}"
    assert len(alerts) == len(set(alerts)), "an alert transition was published twice"
    assert alerts == expected_alerts


def two_service_capture(path: Path) -> Path:
    """The incident capture with its second service renamed so that the two services' panes are in two metrics
    partitions (the names it has both hash to partition 0 of 4)."""
    incident_capture(path)
    path.write_bytes(path.read_bytes().replace(b"foundation-planning-machine-production", RENAMED))
    return path


RENAMED = b"foundation-planner-production"


def expectations(tmp_path: Path) -> tuple[Path, Path, dict[ServiceKey, bytes], list[bytes]]:
    capture = two_service_capture(tmp_path / "capture.jsonl")
    rules = service_rules(tmp_path / "rules.yaml")
    snapshots, expected_alerts = replayed(capture, rules)
    services = {service for service, _start in snapshots}
    rules_fired = {orjson.loads(alert)["rule"] for alert in expected_alerts}
    assert len(snapshots) > 60
    assert sorted(service_partition(service, PARTITIONS) for service in services) == [0, 2]
    assert {"svc-errors", "svc-slow", "factory-error-rate"} <= rules_fired, rules_fired
    assert any(b'"inhibited_by":["svc-errors' in alert for alert in expected_alerts), "no held alert released"
    return capture, rules, snapshots, expected_alerts


def test_two_workers_publish_the_service_panes_and_alerts_of_one(apache_kafka: ApacheKafka, tmp_path: Path) -> None:
    capture, rules, snapshots, expected_alerts = expectations(tmp_path)
    one, two = settings_on(apache_kafka, "sone"), settings_on(apache_kafka, "stwo")
    extra = ("--rules", str(rules))

    async def scenario() -> dict[str, Any]:
        single = WebWorker(one, tmp_path / "single", extra=extra)
        try:
            await single.wait_ready()
            await trickle(one, capture, pieces=8, pause_s=0.1)
            await wait_done(single)
            single_out = await published(one)
        finally:
            single.kill()
        a = WebWorker(two, tmp_path / "a", extra=extra)
        b = WebWorker(two, tmp_path / "b", extra=extra)
        try:
            await a.wait_ready()
            await b.wait_ready()

            async def split() -> bool:
                return await assigned(a) == 2 and await assigned(b) == 2

            await wait_for(split, 90, "two partitions each")
            await trickle(two, capture, pieces=8, pause_s=0.1)
            await wait_done(a, b)
            pair_out = await published(two)
            metrics = (await a.metrics(), await b.metrics())
            parts = (await partitions_of(a), await partitions_of(b))
        finally:
            a.kill()
            b.kill()
        return {"single": single_out, "pair": pair_out, "metrics": metrics, "partitions": parts}

    out = asyncio.run(scenario())
    parts_a, parts_b = out["partitions"]
    assert parts_a.isdisjoint(parts_b) and parts_a | parts_b == {str(p) for p in range(PARTITIONS)}
    metrics_a, metrics_b = out["metrics"]
    closed = [value(m, "tailwatch_service_panes_closed_total") for m in (metrics_a, metrics_b)]
    assert sum(closed) == len(snapshots), "each service pane closed by one worker, once"
    for count, parts in zip(closed, (parts_a, parts_b), strict=True):  # by the owner of its service's partition
        assert (count > 0) == bool(parts & {"0", "2"}), (closed, parts_a, parts_b)
    for metrics in (metrics_a, metrics_b):  # each worker's metrics partitions heard from every logs partition
        heard = by_label(metrics, "tailwatch_service_partitions_heard")
        assert len(heard) == 2 and set(heard.values()) == {PARTITIONS}
    assert_same(*out["single"], snapshots, expected_alerts)  # one worker = replay
    assert_same(*out["pair"], snapshots, expected_alerts)  # two workers = one worker
    assert out["pair"] == out["single"]


def test_a_killed_worker_s_service_partitions_are_taken_over(apache_kafka: ApacheKafka, tmp_path: Path) -> None:
    capture, rules, snapshots, expected_alerts = expectations(tmp_path)
    settings = settings_on(apache_kafka, "sfo")
    extra = ("--rules", str(rules))

    async def scenario() -> tuple[dict[ServiceKey, set[bytes]], list[bytes], str]:
        workers = [WebWorker(settings, tmp_path / "a", extra=extra), WebWorker(settings, tmp_path / "b", extra=extra)]
        a, b = workers
        try:
            await a.wait_ready()
            await b.wait_ready()

            async def split() -> bool:
                return await assigned(a) == 2 and await assigned(b) == 2

            await wait_for(split, 90, "two partitions each")
            ingest = asyncio.create_task(trickle(settings, capture, pieces=40, pause_s=0.3))

            async def closing_service_panes() -> bool:
                return any([value(await w.metrics(), "tailwatch_service_panes_closed_total") > 0 for w in (a, b)])

            await wait_for(closing_service_panes, 60, "a worker to close service panes")
            await asyncio.sleep(2.0)  # past a checkpoint and an offset commit or two
            assert not ingest.done(), "the kill must land mid-stream"
            # the worker whose service stage is at work dies: SIGKILL, no commit, no flush, no leaving the group
            if value(await b.metrics(), "tailwatch_service_panes_closed_total") == 0:
                a, b = b, a
            b.kill()

            async def took_over() -> bool:
                return await assigned(a) == PARTITIONS

            await wait_for(took_over, 90, "the surviving worker to take every partition")
            await ingest
            await wait_done(a)
            return (*await published(settings), a.log_text())
        finally:
            for worker in workers:
                worker.kill()

    started = time.monotonic()
    live, alerts, log_text = asyncio.run(scenario())
    print(f"kill and takeover scenario: {time.monotonic() - started:.1f}s")
    assert '"service partition state restored"' in log_text, "the survivor restored the service stage's checkpoints"
    assert_same(live, alerts, snapshots, expected_alerts)
