"""`/dashboard` on the worker's web server: it serves the page and its data, the numbers grow as more input
arrives, and once the input is done they equal `tailwatch report` on the same capture (report and live agree).
Service rows come from the service metrics topic (read once it exists); the metrics topic's records for the service
stage are skipped, not counted as invalid."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.commands.ingest import log_topic_specs
from agents.commands.report import report_from_files
from agents.dashboard import Dashboard
from agents.ingest import Ingestor
from agents.publisher import Publisher
from agents.settings import KafkaSettings
from agents.topics import TopicSpec, ensure_topics
from pipeline.extract import Extractor
from pipeline.metrics import snapshot as metrics_snapshot
from pipeline.parsing import LogParser, ParseStats
from pipeline.replay import Replay
from pipeline.service import service_snapshot
from pipeline.synthetic import DEMO_START_MS, generate_events, render_capture
from schemas.metrics import PartitionProgress
from tests.alert_samples import alert_event
from tests.browser import chromium, open_page
from tests.kafka_tier import free_port
from tests.test_agents.test_stream_worker import ingest, stop, wait_ready

pytestmark = pytest.mark.integration

MINUTES = 12
SPLIT_MS = DEMO_START_MS + 6 * 60_000


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def poll(url: str, until: Callable[[dict[str, Any]], bool], timeout_s: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            last = json.loads(get(url)[2])
            if until(last):
                return last
        except OSError:
            pass  # the web server is not up yet
        time.sleep(0.5)
    raise AssertionError(f"dashboard data never matched; last totals: {last.get('totals')}")


@pytest.fixture
def capture_parts(tmp_path: Path) -> tuple[Path, bytes, bytes]:
    events = list(generate_events(11, DEMO_START_MS, MINUTES, 300))
    first = [e for e in events if e["eventTimestamp"] < SPLIT_MS]
    rest = [e for e in events if e["eventTimestamp"] >= SPLIT_MS]
    whole = tmp_path / "capture.json"
    part1, part2 = b"".join(render_capture(first)), b"".join(render_capture(rest))
    whole.write_bytes(part1 + part2)
    return whole, part1, part2


def service_panes_of(path: Path) -> list[dict[str, Any]]:
    """The service panes of a capture: what the service stage publishes for it (a replay runs the same stage)."""
    parser = LogParser(str(path), Extractor())
    records = parser.feed(path.read_bytes()).records + parser.finish().records
    replay = Replay(10_000)
    closed = replay.step("files", records).service_closed + replay.step_end("files").service_closed
    return [service_snapshot(event) for event in closed]


async def publish(kafka_settings: KafkaSettings, topic: str, values: list[bytes]) -> None:
    bootstrap = kafka_settings.bootstrap or ""
    await ensure_topics(bootstrap, [TopicSpec(kafka_settings.topic(topic), kafka_settings.partitions)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(kafka_settings.topic(topic), value)
    finally:
        await producer.stop()


@pytest.fixture
def web_worker(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "TAILWATCH_KAFKA_BOOTSTRAP": kafka_settings.bootstrap or ""}
    worker = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "worker", "--topic-prefix", kafka_settings.topic_prefix,
         "--app-id", f"{kafka_settings.topic_prefix}-metrics", "--data-dir", str(tmp_path / "worker"),
         "--web-port", str(port)], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        wait_ready(worker, timeout_s=60)
        yield port
    finally:
        stop(worker)


async def test_dashboard_serves_and_updates(kafka_settings: KafkaSettings, web_worker: int,
                                            capture_parts: tuple[Path, bytes, bytes]) -> None:
    whole, part1, part2 = capture_parts
    base = f"http://127.0.0.1:{web_worker}/dashboard"
    expected = report_from_files(argparse.Namespace(
        inputs=[str(whole)], no_rules=True, rules=None, lateness_ms=10_000, route=[], top=10), ParseStats())

    status, content_type, body = await asyncio.to_thread(get, base)
    assert status == 200 and content_type.startswith("text/html")
    page = body.decode()
    assert 'id="report"' in page and "/dashboard/main" in page and "<svg" in page

    # Garbage on the topics costs only itself: counted, skipped. Records for the service stage are not garbage.
    bootstrap = kafka_settings.bootstrap or ""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(kafka_settings.topic("metrics"), b"not json")
        await producer.send_and_wait(kafka_settings.topic("alerts"), b'{"v": 1, "rule": "half an alert"}')
        # (a progress record that promises nothing, so that a worker's service stage, if it runs, is not misled;
        # held alerts are skipped the same way: tests/test_agents/test_topic_values.py)
        progress = PartitionProgress(partition=0, partitions=kafka_settings.partitions, closed_until_ms=None,
                                     ended=False)
        await producer.send_and_wait(kafka_settings.topic("metrics"), progress.model_dump_json().encode())
    finally:
        await producer.stop()

    # A live input (as `ingest --wrangler` feeds it): the first part, a pause, then the rest.
    await ensure_topics(bootstrap, log_topic_specs(kafka_settings))
    publisher = Publisher(bootstrap, kafka_settings.logs_topic, kafka_settings.deadletter_topic, idempotent=False)
    await publisher.start()
    gate = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes | None]:
        yield part1
        yield None  # "nothing new for a while": pending records go out
        await gate.wait()
        yield part2

    ingestor = Ingestor(publisher, kafka_settings.partitions)
    feeding = asyncio.create_task(ingestor.ingest_stream("live-test", chunks(), final=lambda: True))
    try:
        first = await asyncio.to_thread(poll, base + "/data.json", lambda d: d["totals"]["requests"] > 0)
        assert first["source"] == "live"
        assert 0 < first["totals"]["requests"] < expected["totals"]["requests"]
        assert first["window"]["end_ms"] <= SPLIT_MS  # only panes the first part closed
        gate.set()
        await asyncio.wait_for(feeding, 60)
    finally:
        gate.set()
        await publisher.stop()
    want = expected["totals"]["requests"]
    done = await asyncio.to_thread(poll, base + "/data.json", lambda d: d["totals"]["requests"] == want)
    assert done["totals"]["requests"] > first["totals"]["requests"]
    assert done["skipped_messages"] == 2
    # Live equals the report from the capture: the same panes, the same merged digests.
    assert done["endpoints"] == expected["endpoints"]
    assert done["baselines"] == expected["baselines"]
    for key in ("minutes", "endpoints"):
        assert done["series"][key] == expected["series"][key], key
    assert done["status_codes"] == expected["status_codes"]
    main = (await asyncio.to_thread(get, base + "/main"))[2].decode()
    assert f"{want:,}" in main and main.count('class="chart"') >= 4

    # The service stage's panes, on a service metrics topic that did not exist when the dashboard started.
    panes = service_panes_of(whole)
    await publish(kafka_settings, "metrics.service", [orjson.dumps(pane) for pane in panes] + [b"{}"])
    services = expected["services"]
    assert sum(row["requests"] for row in services) == want and len(services) == 2
    with_services = await asyncio.to_thread(  # (a worker that runs the service stage publishes them too)
        poll, base + "/data.json", lambda d: d["services"] == services and d["skipped_messages"] == 3)
    assert with_services["totals"]["services"] == 2
    assert with_services["series"] == expected["series"]  # endpoints and services, minute by minute
    main = (await asyncio.to_thread(get, base + "/main"))[2].decode()
    assert 'data-chart="service-volume"' in main and 'data-table="services"' in main

    # `tailwatch report --live` reads the same topics and gives the same numbers.
    live = subprocess.run([sys.executable, "-m", "agents.cli", "report", "--live", "--json", "--idle-s", "1.5",
                           "--topic-prefix", kafka_settings.topic_prefix, "--bootstrap", bootstrap],
                          capture_output=True, text=True, timeout=60)
    assert live.returncode == 0, live.stderr
    from_topics = json.loads(live.stdout)
    assert from_topics["source"] == "live"
    assert from_topics["skipped_messages"] == 3 and "skipped 3 messages" in live.stderr
    for key in ("endpoints", "baselines", "top_templates", "top_errors", "build_specs"):
        assert from_topics[key] == expected[key], key  # record sections from the logs topic
    assert from_topics["services"] == services
    no_records = subprocess.run([sys.executable, "-m", "agents.cli", "report", "--live", "--json", "--no-records",
                                 "--idle-s", "1", "--topic-prefix", kafka_settings.topic_prefix,
                                 "--bootstrap", bootstrap], capture_output=True, text=True, timeout=60)
    assert json.loads(no_records.stdout)["top_templates"] is None


@pytest.fixture
def browser() -> str:
    return chromium()  # skip (or fail in CI) before the worker starts


async def test_dashboard_page_refreshes_in_a_browser(browser: str, kafka_settings: KafkaSettings, web_worker: int,
                                                      capture_parts: tuple[Path, bytes, bytes]) -> None:
    """The page, opened before any input, swaps in the new numbers and the service rows as they arrive, without
    console errors."""
    whole, _part1, _part2 = capture_parts
    want = report_from_files(argparse.Namespace(
        inputs=[str(whole)], no_rules=True, rules=None, lateness_ms=10_000, route=[], top=10), ParseStats())
    requests = want["totals"]["requests"]
    loaded = asyncio.Event()
    kpi = "document.querySelector('.kpi b').textContent"
    services = ("[...document.querySelectorAll('table[data-table=services] tbody tr td:first-child')]"
                ".map(td => td.textContent)")
    page = asyncio.create_task(open_page(
        f"http://127.0.0.1:{web_worker}/dashboard", {
            "charts": "document.querySelectorAll('#report svg.chart').length",
            "volume_marks": "document.querySelectorAll('svg[data-chart=volume] .mark').length",
            "service_marks": "document.querySelectorAll('svg[data-chart=service-volume] .mark').length",
            "services": services, "refresh_error": "document.body.dataset.refreshError || null",
        }, wait_for=f"{kpi} === '{requests:,}' && {services}.length === 2 && {services}[0] !== 'none'",
        on_load={"first_kpi": kpi, "first_services": services}, loaded=loaded, timeout_s=90))
    await asyncio.wait_for(loaded.wait(), 60)

    await ingest(kafka_settings, whole)
    panes = service_panes_of(whole)
    await publish(kafka_settings, "metrics.service", [orjson.dumps(pane) for pane in panes])
    result = await page
    assert result.values["first_kpi"] == "0"  # opened before any data: the numbers came by refresh
    assert result.values["first_services"] == ["none"]
    assert sorted(result.values["services"]) == sorted({pane["service"] for pane in panes})
    assert result.values["service_marks"] >= MINUTES
    assert result.errors == []
    assert result.values["refresh_error"] is None
    assert result.values["charts"] >= 5 and result.values["volume_marks"] > 0
    assert result.ink["inked"] > 0.05


def test_report_live_without_a_service_topic_says_so(kafka_settings: KafkaSettings) -> None:
    """No service stage has run (no service metrics topic): the service sections are null, and stderr says why."""
    bootstrap = kafka_settings.bootstrap or ""
    asyncio.run(ensure_topics(bootstrap, [TopicSpec(kafka_settings.topic(name), 1)
                                          for name in ("metrics", "alerts", "logs")]))
    live = subprocess.run([sys.executable, "-m", "agents.cli", "report", "--live", "--json", "--idle-s", "0.5",
                           "--topic-prefix", kafka_settings.topic_prefix, "--bootstrap", bootstrap],
                          capture_output=True, text=True, timeout=60)
    assert live.returncode == 0, live.stderr
    report = json.loads(live.stdout)
    assert report["services"] is None and report["series"]["services"] is None
    assert f"no topic {kafka_settings.topic('metrics.service')}" in live.stderr


async def test_dashboard_start_up_read_skips_what_was_published_before_its_horizon(
        kafka_settings: KafkaSettings, capture_parts: tuple[Path, bytes, bytes]) -> None:
    """A (re)started dashboard reads the metrics topics from a horizon (plus a margin) ago by publish time, not
    from the beginning: snapshots published three days ago are not read, those published now are; a partition
    with nothing that new starts at its end and still gets what is published later. The alerts topic is read from
    the beginning (an alert firing for days needs its `firing` event)."""
    whole, _part1, _part2 = capture_parts
    parser = LogParser(str(whole), Extractor())
    records = parser.feed(whole.read_bytes()).records + parser.finish().records
    replay = Replay(10_000)
    panes = [metrics_snapshot(e) for e in replay.step("files", records).closed + replay.step_end("files").closed]
    old = [pane for pane in panes if pane["window_start_ms"] < SPLIT_MS]
    new = [pane for pane in panes if pane["window_start_ms"] >= SPLIT_MS]
    assert old and new
    now_ms = time.time_ns() // 1_000_000
    long_ago_ms = now_ms - 3 * 24 * 60 * 60_000
    bootstrap = kafka_settings.bootstrap or ""
    metrics, alerts = kafka_settings.topic("metrics"), kafka_settings.topic("alerts")
    await ensure_topics(bootstrap, [TopicSpec(metrics, 2), TopicSpec(alerts, 1)])
    alert = alert_event()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for pane in old:  # both partitions: published three days ago
            await producer.send_and_wait(metrics, orjson.dumps(pane), timestamp_ms=long_ago_ms)
        await producer.send_and_wait(alerts, orjson.dumps(alert), timestamp_ms=long_ago_ms)
        for pane in new[: len(new) // 2]:  # partition 0 only: published now
            await producer.send_and_wait(metrics, orjson.dumps(pane), partition=0)
        dashboard = Dashboard(kafka_settings)
        stopping = asyncio.Event()
        reading = asyncio.create_task(dashboard.consume(stopping.is_set))
        try:
            async def until(requests: int) -> None:
                while dashboard.report()["totals"]["requests"] < requests:
                    assert not reading.done()
                    await asyncio.sleep(0.1)

            first = sum(pane["total"] for pane in new[: len(new) // 2])
            await asyncio.wait_for(until(first), 30)
            assert len(dashboard.alerts) == 1  # the alerts topic from the beginning
            for pane in new[len(new) // 2:]:  # partition 1, which had nothing new at start: read from its end
                await producer.send_and_wait(metrics, orjson.dumps(pane), partition=1)
            await asyncio.wait_for(until(sum(pane["total"] for pane in new)), 30)
        finally:
            stopping.set()
            await asyncio.wait_for(reading, 30)
    finally:
        await producer.stop()
    report = dashboard.report()
    assert report["totals"]["requests"] == sum(pane["total"] for pane in new)
    assert report["window"]["start_ms"] >= SPLIT_MS  # none of the panes published three days ago


def gauge(port: int, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = get(f"http://127.0.0.1:{port}/metrics")[2].decode()
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name)


async def test_the_dashboard_reads_nothing_until_its_page_is_first_requested(
        kafka_settings: KafkaSettings, web_worker: int, capture_parts: tuple[Path, bytes, bytes]) -> None:
    """A worker nobody looks at holds no dashboard panes (and a restart of it reads no metrics history back); the
    first request starts the reading, and the page then shows everything published so far."""
    whole, _part1, _part2 = capture_parts
    await ingest(kafka_settings, whole)
    expected = report_from_files(argparse.Namespace(
        inputs=[str(whole)], no_rules=True, rules=None, lateness_ms=10_000, route=[], top=10), ParseStats())
    want = expected["totals"]["requests"]

    def worker_read_everything() -> bool:
        return (gauge(web_worker, "tailwatch_records_in_total") == want  # read the capture, and (another reader
                and gauge(web_worker, "tailwatch_service_panes_closed_total") > 0)  # of the metrics topic) its panes

    deadline = time.monotonic() + 90
    while not await asyncio.to_thread(worker_read_everything):
        assert time.monotonic() < deadline, "the worker never read the capture"
        await asyncio.sleep(0.5)
    assert await asyncio.to_thread(gauge, web_worker, "tailwatch_dashboard_reading") == 0
    assert await asyncio.to_thread(gauge, web_worker, "tailwatch_dashboard_panes_held") == 0
    done = await asyncio.to_thread(poll, f"http://127.0.0.1:{web_worker}/dashboard/data.json",
                                   lambda d: d["totals"]["requests"] == want)
    assert done["totals"]["requests"] == want
    assert await asyncio.to_thread(gauge, web_worker, "tailwatch_dashboard_reading") == 1
    assert await asyncio.to_thread(gauge, web_worker, "tailwatch_dashboard_panes_held") > 0
