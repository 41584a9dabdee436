"""Producers come and go: two ingests one after the other into a running worker — with or without a worker restart
between them — give the alerts of one replay of the concatenated capture (issue: a partition went deaf once every
producer had ended)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from agents.settings import KafkaSettings
from pipeline.timestamps import iso_to_ms
from tests.support import pane_snapshot, read_topic
from tests.test_agents.test_silences_and_topic_replay import alerts_of, incident_capture, tailwatch
from tests.test_agents.test_stream_worker import ingest, start_worker, stop, wait_ready
from tests.test_pipeline.records import BASE_MS

pytestmark = pytest.mark.integration

CUT_MS = BASE_MS + 15 * 60_000


def split_capture(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A 30-minute capture in which /api/x fails from minute 5 to 26, cut at minute 15 into two files."""
    whole = incident_capture(tmp_path / "whole.jsonl", BASE_MS, 30, range(5, 27))
    lines = whole.read_bytes().splitlines()
    first = [line for line in lines if iso_to_ms(orjson.loads(line)["timestamp"]) < CUT_MS]
    second = [line for line in lines if iso_to_ms(orjson.loads(line)["timestamp"]) >= CUT_MS]
    paths = tmp_path / "first.jsonl", tmp_path / "second.jsonl", tmp_path / "concatenated.jsonl"
    for path, part in zip(paths, (first, second, first + second), strict=True):
        path.write_bytes(b"\n".join(part) + b"\n")
    return paths


def canonical(alerts: list[dict]) -> list[bytes]:
    return sorted(orjson.dumps({**alert, "provenance": {**alert["provenance"], "input": None}},
                               option=orjson.OPT_SORT_KEYS) for alert in alerts)


def wait_for_line(worker_pid: int, text: str, count: int, timeout_s: float = 60.0) -> None:
    """Until the worker's log (drained to /tmp by `wait_ready`) holds `text` `count` times."""
    deadline = time.monotonic() + timeout_s
    log = Path(f"/tmp/tailwatch-worker-{worker_pid}.log")
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count(text) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not logged {count} times")


def test_two_sequential_ingests_give_the_alerts_of_the_concatenated_capture(kafka_settings: KafkaSettings,
                                                                           tmp_path: Path) -> None:
    sequential_ingests(kafka_settings, tmp_path, restart=False)


@pytest.mark.kafka
def test_the_same_with_a_worker_restart_between_them(apache_kafka, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Restart guarantees are proven on Apache Kafka (the embedded broker's high watermark is wrong with
    multi-record batches, which cuts a table's recovery short)."""
    settings = KafkaSettings(apache_kafka.bootstrap, f"q{int(time.time() * 1000) % 10**9}", 4, 1)
    sequential_ingests(settings, tmp_path, restart=True)


def sequential_ingests(kafka_settings: KafkaSettings, tmp_path: Path, restart: bool) -> None:
    first, second, concatenated = split_capture(tmp_path)
    expected = alerts_of(tailwatch("replay", str(concatenated)))
    assert {a["change"] for a in expected} >= {"firing", "resolved"}
    assert any(iso_to_ms(a["provenance"]["window_end"]) > CUT_MS + 60_000 for a in expected)  # after the cut too
    data_dir = tmp_path / "worker"
    worker = start_worker(kafka_settings, data_dir)
    try:
        wait_ready(worker)
        asyncio.run(ingest(kafka_settings, first))
        wait_for_line(worker.pid, '"input fully processed"', 1)
        if restart:
            stop(worker)  # SIGKILL: the checkpoint written at the end of the first input is all it keeps
            worker = start_worker(kafka_settings, data_dir)
            wait_ready(worker, timeout_s=60)
        asyncio.run(ingest(kafka_settings, second))
        bootstrap = kafka_settings.bootstrap or ""
        asyncio.run(read_topic(bootstrap, kafka_settings.topic("alerts"), until=len(expected), timeout_s=60))
        live = asyncio.run(read_topic(bootstrap, kafka_settings.topic("alerts"), idle_s=2))  # and no more
        late = asyncio.run(read_topic(bootstrap, kafka_settings.topic("metrics"), idle_s=1, keep=pane_snapshot))
    finally:
        stop(worker)
    def summary(alerts: list[dict]) -> list[tuple[str, str, str, str]]:
        return sorted((a["provenance"]["window_end"], a["labels"]["endpoint"], a["rule"], a["change"]) for a in alerts)

    assert summary([m.value for m in live]) == summary(expected)
    assert canonical([m.value for m in live]) == canonical(expected)
    assert sum(m.value["late_dropped"] for m in late) == 0
    # and `replay --topic` over the two ingests gives them as well
    assert canonical(alerts_of(tailwatch("replay", "--topic", settings=kafka_settings))) == canonical(expected)
