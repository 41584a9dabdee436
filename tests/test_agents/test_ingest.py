"""Ingestion into the embedded broker: exactly the expected records, partitions and dead letters."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from agents.commands.ingest import log_topic_specs
from agents.ingest import IngestConfig, Ingestor
from agents.publisher import Publisher
from agents.settings import KafkaSettings
from agents.sources import file_chunks
from agents.topics import ensure_topics
from pipeline.batching import DEFAULT_BATCH_RECORDS
from pipeline.columnar_batches import records_of_batch
from pipeline.parsing import LogParser
from schemas.deadletter import DeadLetter
from tests.support import read_topic, records_of_batches

pytestmark = pytest.mark.integration

GIVE_UP = (b'"Unable to reconnect to the tail for factory-api after 5 attempts. '
           b'Please re-run `wrangler tail factory-api` to start a new session."\n')


def messy_capture(sample: Path, tmp_path: Path) -> Path:
    """The sample, twice, with a banner, a cut object, a malformed one and wrangler's give-up line."""
    body = sample.read_bytes()
    cut = body[: body.index(b"\n}\n") // 2]  # the first half of the first object
    parts = [b"Usage metrics tracking has changed since you last ran wrangler.\n", body, b"\n",
             cut, b"\n", b'{"wallTime": 3, "outcome": "ok", oops}\n', body, GIVE_UP]
    path = tmp_path / "messy.json"
    path.write_bytes(b"".join(parts))
    return path


async def test_ingest_publishes_exactly_the_parsed_records(kafka_settings: KafkaSettings,
                                                           sample_capture: Path, tmp_path: Path) -> None:
    capture = messy_capture(sample_capture, tmp_path)
    expected = LogParser("x")
    expected_records = expected.feed(capture.read_bytes()).records + expected.finish().records
    assert len(expected_records) == 22
    top = None  # ingest stamps each record with max event time so far − lateness, in input order
    for record in expected_records:
        top = record["event_time_ms"] if top is None else max(top, record["event_time_ms"])
        record["watermark_ms"] = top - 10_000

    bootstrap = kafka_settings.bootstrap
    assert bootstrap
    await ensure_topics(bootstrap, log_topic_specs(kafka_settings))
    publisher = Publisher(bootstrap, kafka_settings.logs_topic, kafka_settings.deadletter_topic, idempotent=False)
    await publisher.start()
    ingestor = Ingestor(publisher, kafka_settings.partitions, IngestConfig(batch_records=3))
    stats = await ingestor.ingest_chunks(str(capture), file_chunks(capture, chunk_bytes=4096))
    await publisher.stop()
    assert (stats.events, stats.records, stats.non_request, stats.noise, stats.rejected) == (24, 22, 2, 3, 2)

    messages = await read_topic(bootstrap, kafka_settings.logs_topic, until=publisher.batches_sent)
    assert len(messages) == publisher.batches_sent
    received = records_of_batches(messages, kafka_settings.partitions, max_records=3)
    partitioner = DefaultPartitioner()
    all_partitions = list(range(kafka_settings.partitions))
    # Same records, nothing lost or invented; order kept within each partition.
    canon = lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS)  # noqa: E731
    assert Counter(map(canon, received)) == Counter(map(canon, expected_records))
    by_partition: dict[int, list[bytes]] = {}
    for message in sorted(messages, key=lambda m: (m.partition, m.offset)):
        by_partition.setdefault(message.partition, []).extend(canon(r) for r in records_of_batch(message.value))
    for partition, got in by_partition.items():
        want = [canon(r) for r in expected_records
                if partitioner(f"{r['service']}|{r['endpoint']}".encode(), all_partitions, all_partitions)
                == partition]
        assert got == want
    # Every partition got a last batch carrying the producer's watermark (heartbeats included).
    last_watermarks = {m.partition: m.value["watermark_ms"] for m in messages}
    assert set(last_watermarks) == set(all_partitions)
    top = max(r["event_time_ms"] for r in expected_records)
    assert set(last_watermarks.values()) == {top - 10_000}

    letters = await read_topic(bootstrap, kafka_settings.deadletter_topic, until=2)
    kinds = sorted(DeadLetter.model_validate(m.value).kind for m in letters)
    assert kinds == ["malformed_json", "truncated_object"]
    assert all(m.key == str(capture).encode() for m in letters)
    body = sample_capture.read_bytes()
    cut_line = 1 + body.count(b"\n") + 1 + 1  # after the banner, the sample and a blank line
    malformed_line = cut_line + body[: body.index(b"\n}\n") // 2].count(b"\n") + 1
    assert sorted(m.value["line"] for m in letters) == [cut_line, malformed_line]


def test_cli_ingest_reports_counts(kafka_settings: KafkaSettings, sample_capture: Path, tmp_path: Path) -> None:
    env = {**os.environ, "TAILWATCH_KAFKA_BOOTSTRAP": kafka_settings.bootstrap or "",
           "TAILWATCH_TOPIC_PREFIX": kafka_settings.topic_prefix}
    result = subprocess.run([sys.executable, "-m", "agents.cli", "ingest", "--from", str(sample_capture)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("events=12 records=11 noise=0 rejected=0 non_request=1")
    assert "published=11" in summary


def test_cli_ingest_without_kafka_starts_the_embedded_broker(sample_capture: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TAILWATCH_KAFKA_BOOTSTRAP"}
    result = subprocess.run([sys.executable, "-m", "agents.cli", "ingest", "--from", str(sample_capture)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert "embedded broker started" in result.stderr
    assert "published=11" in result.stderr.strip().splitlines()[-1]


def test_cli_ingest_broker_unreachable_is_a_clear_error(sample_capture: Path) -> None:
    from agents.embedded_broker import free_port

    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "agents.cli", "ingest", "--from", str(sample_capture),
         "--bootstrap", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=90)
    assert result.returncode == 3
    assert f"cannot reach Kafka at 127.0.0.1:{port} after 5 attempts" in result.stderr


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
async def test_cli_ingest_stdin_pipe_publishes_before_the_pipe_closes(kafka_settings: KafkaSettings,
                                                                      sample_capture: Path, compress: bool) -> None:
    """`wrangler tail … | tailwatch ingest --stdin`: records go out every --linger-ms, not at the end of input."""
    import asyncio
    import gzip

    env = {**os.environ, "TAILWATCH_KAFKA_BOOTSTRAP": kafka_settings.bootstrap or "",
           "TAILWATCH_TOPIC_PREFIX": kafka_settings.topic_prefix}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agents.cli", "ingest", "--stdin", "--linger-ms", "100",
        stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    assert process.stdin is not None and process.stderr is not None
    body = sample_capture.read_bytes()
    process.stdin.write(gzip.compress(body) if compress else body)
    await process.stdin.drain()
    try:
        # The pipe stays open: the records must arrive anyway.
        deadline = asyncio.get_running_loop().time() + 30
        records: list[dict] = []
        while len(records) < 11 and asyncio.get_running_loop().time() < deadline:
            messages = await read_topic(kafka_settings.bootstrap or "", kafka_settings.logs_topic, timeout_s=5)
            records = records_of_batches(messages, kafka_settings.partitions, 500)
        assert len(records) == 11
        assert process.returncode is None
    finally:
        process.stdin.close()
    stderr = (await asyncio.wait_for(process.stderr.read(), 60)).decode()
    assert await asyncio.wait_for(process.wait(), 30) == 0, stderr
    assert "published=11" in stderr.strip().splitlines()[-1]


def scanner_capture(path: Path) -> Path:
    """One service: /api/a serves 200s; a scanner tries 30 new paths (404s), then 10 that answer 403."""
    def event(i: int, route: str, status: int) -> bytes:
        return orjson.dumps({"outcome": "ok", "scriptName": "factory-api", "eventTimestamp": 1_767_700_800_000 + i,
                             "logs": [], "exceptions": [],
                             "event": {"request": {"url": f"https://api.example.com{route}", "method": "GET",
                                                   "headers": {}}, "response": {"status": status}}}) + b"\n"
    requests = [("/api/a", 200)] * 5 + [(f"/scan/{word}", 404) for word in ("wp", "env", "git") * 10]
    requests += [(f"/admin/{chr(97 + i)}", 403) for i in range(10)] + [("/api/a", 404)]
    path.write_bytes(b"".join(event(i, route, status) for i, (route, status) in enumerate(requests)))
    return path


async def test_cli_ingest_folds_scans_and_caps_endpoints(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    """Records are published with their catalog key (so partitions are by the folded key), the counts are in the
    summary, and reaching the cap is logged once."""
    env = {**os.environ, "TAILWATCH_KAFKA_BOOTSTRAP": kafka_settings.bootstrap or "",
           "TAILWATCH_TOPIC_PREFIX": kafka_settings.topic_prefix}
    capture = scanner_capture(tmp_path / "scans.jsonl")
    result = subprocess.run([sys.executable, "-m", "agents.cli", "ingest", "--from", str(capture),
                             "--max-endpoints", "4"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    summary = result.stderr.strip().splitlines()[-1]
    assert "published=46" in summary
    # 7 keys refused; distinct ones are counted up to the cap (the catalog holds no more than that many hashes)
    assert "folded_unmatched=30 folded_overflow=7 refused_keys=4 services_refused=0" in summary
    capped = [line for line in result.stderr.splitlines() if "endpoint cap reached" in line]
    assert len(capped) == 1 and "'factory-api' reached its endpoint cap (4 keys" in capped[0]
    assert kafka_settings.bootstrap
    batches = int(summary.split("batches=")[1].split()[0])
    messages = await read_topic(kafka_settings.bootstrap, kafka_settings.logs_topic, until=batches)
    records = records_of_batches(messages, kafka_settings.partitions, DEFAULT_BATCH_RECORDS)
    endpoints = Counter(r["endpoint"] for r in records)
    assert endpoints == {"/api/a": 6, "<unmatched>": 30, "/admin/a": 1, "/admin/b": 1, "/admin/c": 1,
                         "<overflow>": 7}


def test_cli_max_endpoints_must_be_a_positive_number(sample_capture: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "agents.cli", "parse", str(sample_capture), "--max-endpoints", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--max-endpoints: must be at least 1: 0" in result.stderr and "Traceback" not in result.stderr


def test_cli_parse_and_replay_fold_as_ingest_does(tmp_path: Path) -> None:
    capture = str(scanner_capture(tmp_path / "scans.jsonl"))
    parsed = subprocess.run([sys.executable, "-m", "agents.cli", "parse", capture, "--max-endpoints", "4"],
                            capture_output=True, text=True, timeout=60, check=True)
    endpoints = Counter(orjson.loads(line)["endpoint"] for line in parsed.stdout.splitlines())
    assert endpoints == {"/api/a": 6, "<unmatched>": 30, "/admin/a": 1, "/admin/b": 1, "/admin/c": 1,
                         "<overflow>": 7}
    assert "tailwatch parse: service 'factory-api' reached its endpoint cap" in parsed.stderr
    assert parsed.stderr.strip().splitlines()[-1].endswith("folded_unmatched=30 folded_overflow=7 refused_keys=4 "
                                                          "services_refused=0")
    replayed = subprocess.run([sys.executable, "-m", "agents.cli", "replay", capture, "--metrics", "--max-endpoints",
                               "4"], capture_output=True, text=True, timeout=60, check=True)
    totals = {orjson.loads(line)["endpoint"]: orjson.loads(line)["total"] for line in replayed.stdout.splitlines()}
    assert totals == endpoints
    assert "folded_unmatched=30 folded_overflow=7" in replayed.stderr.strip().splitlines()[-1]


async def test_a_broker_without_idempotence_is_one_warning_not_an_error(kafka_settings: KafkaSettings,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """The embedded broker refuses InitProducerId: tailwatch falls back and says so once; aiokafka's own error line
    about it is not shown (it read like a failure on every ingest)."""
    bootstrap = kafka_settings.bootstrap
    assert bootstrap
    publisher = Publisher(bootstrap, kafka_settings.logs_topic, kafka_settings.deadletter_topic)
    with caplog.at_level("INFO"):
        await publisher.start()
        await publisher.stop()
    assert publisher.idempotent is False
    assert [r.getMessage() for r in caplog.records if r.levelname in ("WARNING", "ERROR")] == [
        "broker has no idempotent producer; using acks=all with retries"]
