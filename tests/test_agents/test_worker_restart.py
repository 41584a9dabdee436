"""Kill the metrics worker (SIGKILL) mid-stream on Apache Kafka, restart it: the same snapshots as an undisturbed
replay — none lost, none different (one re-sent after the crash is an exact duplicate) — and the same alert
transitions, each exactly once."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import orjson
import pytest

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
from tests.captures import canonical, disordered_capture
from tests.support import pane_snapshot, read_topic
from tests.test_agents.test_stream_worker import start_worker, stop, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


async def trickle(settings: KafkaSettings, capture: Path, pieces: int, pause_s: float) -> None:
    """Ingest the capture in `pieces` slices with pauses, as one stream, so the worker has work when killed."""
    bootstrap = settings.bootstrap
    assert bootstrap
    await ensure_topics(bootstrap, log_topic_specs(settings))
    publisher = Publisher(bootstrap, settings.logs_topic, settings.deadletter_topic)
    await publisher.start()
    ingestor = Ingestor(publisher, settings.partitions)
    feed = ingestor.feed("files")
    parser = feed.new_parser(str(capture))
    chunks = list(file_chunks(capture, chunk_bytes=max(1, capture.stat().st_size // pieces)))
    for chunk in chunks:
        await feed.push(parser.feed(chunk))
        await feed.flush(heartbeat=True)
        await asyncio.sleep(pause_s)
    await feed.push(parser.finish())
    await feed.flush(heartbeat=True, final=True)
    await publisher.stop()


@pytest.mark.parametrize("table_value_max_bytes", [None, 4096], ids=["whole-values", "values-in-pieces"])
def test_killed_worker_resumes_with_identical_snapshots(apache_kafka, sample_capture: Path,  # type: ignore[no-untyped-def]
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        table_value_max_bytes: int | None) -> None:
    """With values in pieces (every checkpoint over 4 KiB is, as those of thousands of endpoints are at the
    default 512 KiB), a restore joins them: the same outcome."""
    if table_value_max_bytes is not None:
        monkeypatch.setenv("TAILWATCH_TABLE_VALUE_MAX_BYTES", str(table_value_max_bytes))
    settings = KafkaSettings(apache_kafka.bootstrap, f"r{int(time.time() * 1000) % 10**9}", 4, 1)
    capture = disordered_capture(sample_capture, tmp_path / "disordered.json", copies=120)
    args = argparse.Namespace(inputs=[str(capture)], lateness_ms=10_000, route=[])
    rules = load_rules()
    events, replay_alerts = replay_events(args, ParseStats(), RuleEngine(rules.compiled, rules.rule_file,
                                                                         rules.sha256))
    expected = {(s["service"], s["endpoint"], s["window_start"]): canonical(s) for s in map(snapshot, events)}
    assert len(replay_alerts) >= 3
    data_dir = tmp_path / "worker"

    async def scenario() -> None:
        worker = start_worker(settings, data_dir)
        try:
            wait_ready(worker)
            ingest = asyncio.create_task(trickle(settings, capture, pieces=40, pause_s=0.2))
            # Past a few checkpoints and offset commits (every ~3 s), with about half the input still to come.
            await asyncio.sleep(5.0)
            assert not ingest.done()
            worker.kill()  # SIGKILL: no commit, no flush, no goodbye
            worker.wait(timeout=10)
            worker = start_worker(settings, data_dir)
            wait_ready(worker, timeout_s=60)
            await ingest
            messages = await read_topic(settings.bootstrap or "", settings.topic("metrics"), idle_s=4, timeout_s=90,
                                             keep=pane_snapshot)
            alerts = await read_topic(settings.bootstrap or "", settings.topic("alerts"), idle_s=2, timeout_s=30)
        finally:
            stop(worker)
        live: dict[tuple[str, str, str], set[bytes]] = {}
        for message in messages:
            value = message.value
            live.setdefault((value["service"], value["endpoint"], value["window_start"]), set()).add(
                canonical(value))
        assert set(live) == set(expected), "no pane lost, none invented"
        differing = [key for key, versions in live.items() if versions != {expected[key]}]
        detail = [(key, [(v["total"], v["late_dropped"]) for v in map(orjson.loads, live[key])],
                   [(v["total"], v["late_dropped"]) for v in [orjson.loads(expected[key])]]) for key in differing[:3]]
        assert differing == [], f"{len(differing)} panes differ from the replay: (live, replay) {detail}"
        # Alert transitions: the replay's, each once (the checkpoint goes out with them).
        assert all(m.value["provenance"].pop("input") is not None for m in alerts)  # live-only provenance
        live_alerts = sorted(canonical(m.value) for m in alerts)
        assert all(a["provenance"].pop("input") is None for a in replay_alerts)
        assert live_alerts == sorted(canonical(a) for a in replay_alerts)

    asyncio.run(scenario())
