"""Supervising a (fake) `wrangler tail`: it prints part of a capture and crashes, is restarted, and nothing it
printed is lost; on stop it is terminated and the rest of its output is still published."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
from pathlib import Path

import pytest

from agents.commands.ingest import log_topic_specs
from agents.ingest import IngestConfig, Ingestor
from agents.publisher import Publisher
from agents.settings import KafkaSettings
from agents.topics import ensure_topics
from agents.wrangler_tail import WranglerTail
from pipeline.columnar_batches import records_of_batch
from tests.support import read_topic

pytestmark = pytest.mark.integration

FAKE_WRANGLER = f"""#!{sys.executable}
import os, pathlib, signal, sys, time
state = pathlib.Path(os.environ["FAKE_WRANGLER_DIR"])
count_file = state / "count"
run = int(count_file.read_text()) + 1 if count_file.exists() else 1
count_file.write_text(str(run))
(state / f"argv-{{run}}").write_text(" ".join(sys.argv[1:]))
out = state / f"run-{{run}}.out"
if out.exists():
    sys.stdout.buffer.write(out.read_bytes())
    sys.stdout.flush()
sys.stderr.write("\\u25b2 [WARNING] Tail connection lost. Reconnecting (attempt 1 of 5) in 1s...\\n")
sys.stderr.flush()
mode = (state / f"run-{{run}}.mode").read_text() if (state / f"run-{{run}}.mode").exists() else "hang"
if mode == "crash":
    sys.exit(1)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.05)
"""


def split_objects(capture: bytes) -> list[bytes]:
    return [part + b"\n}\n" for part in capture.split(b"\n}\n") if part.strip()]


@pytest.fixture
def fake_wrangler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "wrangler"
    script.write_text(FAKE_WRANGLER)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_WRANGLER_DIR", str(state))
    monkeypatch.delenv("TAILWATCH_WRANGLER", raising=False)
    return state


async def test_crash_restart_and_stop_lose_nothing(kafka_settings: KafkaSettings, sample_capture: Path,
                                                   fake_wrangler: Path, caplog: pytest.LogCaptureFixture) -> None:
    objects = split_objects(sample_capture.read_bytes())
    assert len(objects) == 12
    # Run 1: five events and half of the sixth, then a crash. Run 2: the last six, then it keeps running.
    (fake_wrangler / "run-1.out").write_bytes(b"".join(objects[:5]) + objects[5][: len(objects[5]) // 2])
    (fake_wrangler / "run-1.mode").write_text("crash")
    (fake_wrangler / "run-2.out").write_bytes(b"".join(objects[6:]))

    bootstrap = kafka_settings.bootstrap
    assert bootstrap
    await ensure_topics(bootstrap, log_topic_specs(kafka_settings))
    publisher = Publisher(bootstrap, kafka_settings.logs_topic, kafka_settings.deadletter_topic, idempotent=False)
    await publisher.start()
    ingestor = Ingestor(publisher, kafka_settings.partitions, IngestConfig(linger_ms=100))
    tail = WranglerTail("factory-api", ingestor, backoff_initial_s=0.1)
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="tailwatch.wrangler")
    task = asyncio.create_task(tail.run(stop))

    # Events 1-5 hold one cron event, 7-12 are all requests: 4 + 6 records.
    deadline = asyncio.get_running_loop().time() + 20
    records: list[dict] = []
    while asyncio.get_running_loop().time() < deadline:
        messages = await read_topic(bootstrap, kafka_settings.logs_topic, idle_s=0.3, timeout_s=5)
        records = [r for m in messages for r in records_of_batch(m.value)]
        if len(records) >= 10:
            break
        await asyncio.sleep(0.2)
    assert tail.runs == 2, "the crashed tail was restarted once"
    stop.set()
    await asyncio.wait_for(task, timeout=15)
    await publisher.stop()

    assert tail.exit_codes[0] == 1
    assert (fake_wrangler / "argv-1").read_text() == "tail factory-api --format json"
    request_ids = sorted(r["request_id"] for r in records)
    assert len(request_ids) == 10 and len(set(request_ids)) == 10, "each printed request once"
    letters = await read_topic(bootstrap, kafka_settings.deadletter_topic, until=1, timeout_s=10)
    assert [m.value["kind"] for m in letters] == ["truncated_object"]
    assert letters[0].value["source"] == "wrangler:factory-api"
    stats = ingestor.feed("wrangler:factory-api").stats
    assert (stats.records, stats.non_request, stats.rejected) == (10, 1, 1)
    assert any("Tail connection lost" in str(getattr(r, "fields", {})) for r in caplog.records)


async def test_stop_reads_everything_already_printed(kafka_settings: KafkaSettings, sample_capture: Path,
                                                     fake_wrangler: Path) -> None:
    """Output printed right before SIGTERM is still published (linger long, so only the stop path sends it)."""
    (fake_wrangler / "run-1.out").write_bytes(sample_capture.read_bytes())
    bootstrap = kafka_settings.bootstrap
    assert bootstrap
    await ensure_topics(bootstrap, log_topic_specs(kafka_settings))
    publisher = Publisher(bootstrap, kafka_settings.logs_topic, kafka_settings.deadletter_topic, idempotent=False)
    await publisher.start()
    ingestor = Ingestor(publisher, kafka_settings.partitions, IngestConfig(linger_ms=60_000))
    tail = WranglerTail("factory-api", ingestor)
    stop = asyncio.Event()
    task = asyncio.create_task(tail.run(stop))
    while not (fake_wrangler / "argv-1").exists():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, timeout=15)
    await publisher.stop()
    assert tail.runs == 1
    messages = await read_topic(bootstrap, kafka_settings.logs_topic, idle_s=0.5)
    assert sum(len(records_of_batch(m.value)) for m in messages) == 11
