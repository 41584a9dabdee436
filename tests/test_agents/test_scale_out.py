"""Scale-out on Apache Kafka: two `tailwatch worker`s in one consumer group split the logs topic's partitions, and
together publish what one worker publishes on the same input; one of them killed (SIGKILL) mid-stream, the other
takes over its partitions from the changelog, and no snapshot or alert transition is lost, different or repeated
(snapshots deduplicated by (service, endpoint, window_start); alert transitions exactly once)."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

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
from tests.captures import canonical
from tests.kafka_tier import ApacheKafka
from tests.support import Message, pane_snapshot, read_topic
from tests.test_agents.test_worker_restart import trickle
from tests.test_agents.worker_web import WebWorker, by_label, incident_capture, value, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

PARTITIONS = 4
Key = tuple[str, str, str]


def settings_on(broker: ApacheKafka, name: str) -> KafkaSettings:
    return KafkaSettings(broker.bootstrap, f"{name}{int(time.time() * 1000) % 10**9}", PARTITIONS, 1)


def replayed(capture: Path) -> tuple[dict[Key, bytes], list[bytes], int]:
    """What one worker publishes for `capture`, by offline replay: snapshots by key, sorted alerts, records."""
    rules = load_rules()
    totals = ParseStats()
    args = argparse.Namespace(inputs=[str(capture)], lateness_ms=10_000, route=[])
    panes, alerts = replay_events(args, totals, RuleEngine(rules.compiled, rules.rule_file, rules.sha256))
    snapshots = {(s["service"], s["endpoint"], s["window_start"]): canonical(s) for s in map(snapshot, panes)}
    return snapshots, sorted(alert_canonical(alert, live=False) for alert in alerts), totals.records


def alert_canonical(alert: dict[str, Any], live: bool = True) -> bytes:
    """An alert without `provenance.input` (the logs offsets that fed it: live only), after checking it is there
    exactly when live."""
    alert = {**alert, "provenance": dict(alert["provenance"])}
    assert (alert["provenance"].pop("input") is not None) == live
    return canonical(alert)


def snapshot_versions(messages: list[Message]) -> dict[Key, set[bytes]]:
    versions: dict[Key, set[bytes]] = {}
    for message in messages:
        v = message.value
        versions.setdefault((v["service"], v["endpoint"], v["window_start"]), set()).add(canonical(v))
    return versions


async def published(settings: KafkaSettings) -> tuple[dict[Key, set[bytes]], list[bytes]]:
    bootstrap = settings.bootstrap or ""
    metrics = await read_topic(bootstrap, settings.topic("metrics"), idle_s=3, timeout_s=120, keep=pane_snapshot)
    alerts = await read_topic(bootstrap, settings.topic("alerts"), idle_s=2, timeout_s=60)
    return snapshot_versions(metrics), sorted(alert_canonical(m.value) for m in alerts)


async def partitions_of(worker: WebWorker) -> set[str]:
    """The logs partitions a worker has processed messages of (the labels of its consumer lag gauge)."""
    return {dict(labels)["partition"] for labels in by_label(await worker.metrics(), "tailwatch_consumer_lag")}


async def assigned(worker: WebWorker) -> float:
    return value(await worker.metrics(), "tailwatch_partitions_assigned")


async def wait_done(*workers: WebWorker, timeout_s: float = 180) -> None:
    async def done() -> bool:
        return all('"input fully processed"' in w.log_text() for w in workers)

    try:
        await wait_for(done, timeout_s, "the input to be fully processed", pause_s=0.5)
    except AssertionError as error:  # say where each worker got to
        tails = "\n".join(f"--- {w.log_path}:\n" + "\n".join(
            [line[:300] for line in w.log_text().splitlines() if '"level":"debug"' not in line][-15:])
            for w in workers)
        raise AssertionError(f"{error}\n{tails}") from None


def assert_same(live: dict[Key, set[bytes]], alerts: list[bytes], snapshots: dict[Key, bytes],
                expected_alerts: list[bytes]) -> None:
    assert set(live) == set(snapshots), (f"{len(set(snapshots) - set(live))} panes lost, "
                                         f"{len(set(live) - set(snapshots))} invented")
    differing = [key for key, versions in live.items() if versions != {snapshots[key]}]
    assert differing == [], f"{len(differing)} panes differ, e.g. {differing[:3]}"
    assert len(alerts) == len(set(alerts)), "an alert transition was published twice"
    assert alerts == expected_alerts


def test_two_workers_split_the_partitions_and_publish_what_one_does(apache_kafka: ApacheKafka,
                                                                     tmp_path: Path) -> None:
    capture = incident_capture(tmp_path / "capture.jsonl")
    snapshots, expected_alerts, records = replayed(capture)
    assert len(snapshots) > 200 and len(expected_alerts) >= 5
    one, two = settings_on(apache_kafka, "one"), settings_on(apache_kafka, "two")

    async def scenario() -> dict[str, Any]:
        # One worker alone.
        single = WebWorker(one, tmp_path / "single")
        try:
            await single.wait_ready()
            await trickle(one, capture, pieces=8, pause_s=0.1)
            await wait_done(single)
            single_out = await published(one)
        finally:
            single.kill()
        # Two workers in one group: wait until the group has settled on two partitions each, then the same input.
        a = WebWorker(two, tmp_path / "a", app_id=f"{two.topic_prefix}-metrics")
        b = WebWorker(two, tmp_path / "b", app_id=f"{two.topic_prefix}-metrics")
        try:
            await a.wait_ready()
            await b.wait_ready()

            async def split() -> bool:
                return await assigned(a) == 2 and await assigned(b) == 2

            await wait_for(split, 90, "two partitions each")
            await trickle(two, capture, pieces=8, pause_s=0.1)
            await wait_done(a, b)
            pair_out = await published(two)
            metrics_a, metrics_b = await a.metrics(), await b.metrics()
            parts_a, parts_b = await partitions_of(a), await partitions_of(b)
        finally:
            a.kill()
            b.kill()
        return {"single": single_out, "pair": pair_out, "metrics": (metrics_a, metrics_b),
                "partitions": (parts_a, parts_b)}

    out = asyncio.run(scenario())
    parts_a, parts_b = out["partitions"]
    assert parts_a.isdisjoint(parts_b) and parts_a | parts_b == {str(p) for p in range(PARTITIONS)}
    metrics_a, metrics_b = out["metrics"]
    in_a, in_b = value(metrics_a, "tailwatch_records_in_total"), value(metrics_b, "tailwatch_records_in_total")
    assert in_a > 0 and in_b > 0 and in_a + in_b == records, "each worker read only its own partitions"
    single_snapshots, single_alerts = out["single"]
    pair_snapshots, pair_alerts = out["pair"]
    assert_same(single_snapshots, single_alerts, snapshots, expected_alerts)  # one worker = replay
    assert_same(pair_snapshots, pair_alerts, snapshots, expected_alerts)  # two workers = one worker
    assert pair_snapshots == single_snapshots and pair_alerts == single_alerts


def test_a_killed_worker_s_partitions_are_taken_over(apache_kafka: ApacheKafka, tmp_path: Path) -> None:
    capture = incident_capture(tmp_path / "capture.jsonl")
    snapshots, expected_alerts, _records = replayed(capture)
    settings = settings_on(apache_kafka, "fo")
    timings: dict[str, float] = {}

    async def scenario() -> tuple[dict[Key, set[bytes]], list[bytes]]:
        a = WebWorker(settings, tmp_path / "a")
        b = WebWorker(settings, tmp_path / "b")
        try:
            await a.wait_ready()
            await b.wait_ready()

            async def split() -> bool:
                return await assigned(a) == 2 and await assigned(b) == 2

            await wait_for(split, 90, "two partitions each")
            ingest = asyncio.create_task(trickle(settings, capture, pieces=40, pause_s=0.3))

            async def b_working() -> bool:
                return value(await b.metrics(), "tailwatch_records_in_total") > 0

            await wait_for(b_working, 60, "the second worker to process records")
            await asyncio.sleep(2.0)  # past a checkpoint and an offset commit or two
            assert not ingest.done(), "the kill must land mid-stream"
            b.kill()  # SIGKILL: no commit, no flush, no leaving the group
            killed = time.monotonic()

            async def took_over() -> bool:
                return await assigned(a) == PARTITIONS

            await wait_for(took_over, 90, "the surviving worker to take every partition")
            timings["takeover_s"] = time.monotonic() - killed
            await ingest
            await wait_done(a)
            return await published(settings)
        finally:
            a.kill()
            b.kill()

    live, alerts = asyncio.run(scenario())
    print(f"takeover after the kill: {timings['takeover_s']:.1f}s")
    assert_same(live, alerts, snapshots, expected_alerts)


def test_a_worker_joining_mid_stream_takes_partitions_over_cleanly(apache_kafka: ApacheKafka,
                                                                   tmp_path: Path) -> None:
    """The clean hand-over: the first worker's partitions are revoked while it holds state not yet checkpointed;
    the newcomer restores them from the changelog and goes on, and nothing is lost or repeated."""
    capture = incident_capture(tmp_path / "capture.jsonl")
    snapshots, expected_alerts, records = replayed(capture)
    settings = settings_on(apache_kafka, "jn")

    async def scenario() -> tuple[dict[Key, set[bytes]], list[bytes], float]:
        a = WebWorker(settings, tmp_path / "a")
        b: WebWorker | None = None
        try:
            await a.wait_ready()
            ingest = asyncio.create_task(trickle(settings, capture, pieces=60, pause_s=0.2))

            async def a_working() -> bool:
                return value(await a.metrics(), "tailwatch_records_in_total") > 0

            await wait_for(a_working, 60, "the first worker to process records")
            await asyncio.sleep(2.0)
            assert not ingest.done(), "the newcomer must join mid-stream"
            b = WebWorker(settings, tmp_path / "b")
            await b.wait_ready()

            async def split() -> bool:
                assert b is not None
                return await assigned(a) == 2 and await assigned(b) == 2

            await wait_for(split, 90, "two partitions each")
            await ingest
            await wait_done(a, b)
            newcomer_records = value(await b.metrics(), "tailwatch_records_in_total")
            return (*await published(settings), newcomer_records)
        finally:
            a.kill()
            if b is not None:
                b.kill()

    live, alerts, newcomer_records = asyncio.run(scenario())
    assert 0 < newcomer_records < records
    assert_same(live, alerts, snapshots, expected_alerts)


async def send(feed: Any, parser: Any, part: list[bytes], pause_s: float = 0.0) -> None:
    for chunk in part:
        await feed.push(parser.feed(chunk))
        await feed.flush(heartbeat=True)  # at least one message per partition per chunk
        await asyncio.sleep(pause_s)


async def end_offsets(settings: KafkaSettings) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap or "", enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets([TopicPartition(settings.logs_topic, p) for p in range(PARTITIONS)]))
    finally:
        await consumer.stop()


async def commit(settings: KafkaSettings, offsets: dict[TopicPartition, int]) -> None:
    """Commit `offsets` for the workers' consumer group, as if it had read that far."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap or "",
                                group_id=f"{settings.topic_prefix}-metrics", enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def first_part_by_a_first_worker(settings: KafkaSettings, data_dir: Path, feed: Any, parser: Any,
                                       part: list[bytes]) -> dict[TopicPartition, int]:
    """A first worker processes `part` (sent over several of its checkpoints, one a second) and stops cleanly,
    leaving the group. Returns the logs topic's end offsets after the part."""
    first = WebWorker(settings, data_dir)
    try:
        await first.wait_ready()
        await send(feed, parser, part, pause_s=0.4)
        sent = await end_offsets(settings)

        async def caught_up() -> bool:
            lag = by_label(await first.metrics(), "tailwatch_consumer_lag")
            return len(lag) == PARTITIONS and sum(lag.values()) == 0

        await wait_for(caught_up, 60, "the first worker to process the first part")
    finally:
        first.process.terminate()  # a clean stop: it leaves the group
        first.process.wait(timeout=30)
        first.kill()
    return sent


def test_a_restored_partition_reads_the_offsets_its_checkpoint_needs(apache_kafka: ApacheKafka,
                                                                         tmp_path: Path) -> None:
    """The group's committed offset is past what the restored checkpoint holds (what a fetch Faust made before a
    rebalance and delivered after it leads to): the worker reads the messages between its checkpoint and the
    first one delivered instead of skipping them, and publishes exactly what replay gives."""
    capture = incident_capture(tmp_path / "capture.jsonl", minutes=20)
    snapshots, expected_alerts, _records = replayed(capture)
    settings = settings_on(apache_kafka, "rw")
    bootstrap = settings.bootstrap or ""
    chunks = list(file_chunks(capture, chunk_bytes=max(1, capture.stat().st_size // 30)))

    async def scenario() -> tuple[dict[Key, set[bytes]], list[bytes], str]:
        await ensure_topics(bootstrap, log_topic_specs(settings))
        publisher = Publisher(bootstrap, settings.logs_topic, settings.deadletter_topic)
        await publisher.start()
        try:
            feed = Ingestor(publisher, PARTITIONS).feed("files")
            parser = feed.new_parser(str(capture))
            sent = await first_part_by_a_first_worker(settings, tmp_path / "first", feed, parser, chunks[:10])
            await send(feed, parser, chunks[10:20])
            # Committed: 3 messages past the first part's end, so past every partition's checkpoint.
            await commit(settings, {tp: offset + 3 for tp, offset in sent.items()})
            second = WebWorker(settings, tmp_path / "second")
            try:
                await second.wait_ready()
                await send(feed, parser, chunks[20:])
                await feed.push(parser.finish())
                await feed.flush(heartbeat=True, final=True)
                await wait_done(second)
                topics = await published(settings)
                log_text = second.log_text()
            finally:
                second.kill()
        finally:
            await publisher.stop()
        return (*topics, log_text)

    live, alerts, log_text = asyncio.run(scenario())
    assert_same(live, alerts, snapshots, expected_alerts)
    assert '"filling an offset gap"' in log_text
    assert '"offset gap"' not in log_text  # every gap was filled, none left


def test_a_restored_partition_catches_up_when_no_message_comes_after_its_checkpoint(apache_kafka: ApacheKafka,
                                                                                      tmp_path: Path) -> None:
    """The whole input is on the topic and the group's committed offset is at its end, past the checkpoint of the
    worker that read the first part: Faust delivers nothing more, so no message reveals the gap. The new worker
    notices partitions behind their high watermark with nothing applied, reads the missing messages itself and
    publishes exactly what replay gives."""
    capture = incident_capture(tmp_path / "capture.jsonl", minutes=20)
    snapshots, expected_alerts, _records = replayed(capture)
    settings = settings_on(apache_kafka, "cu")
    bootstrap = settings.bootstrap or ""
    chunks = list(file_chunks(capture, chunk_bytes=max(1, capture.stat().st_size // 30)))

    async def scenario() -> tuple[dict[Key, set[bytes]], list[bytes], str]:
        await ensure_topics(bootstrap, log_topic_specs(settings))
        publisher = Publisher(bootstrap, settings.logs_topic, settings.deadletter_topic)
        await publisher.start()
        try:
            feed = Ingestor(publisher, PARTITIONS).feed("files")
            parser = feed.new_parser(str(capture))
            await first_part_by_a_first_worker(settings, tmp_path / "first", feed, parser, chunks[:10])
            await send(feed, parser, chunks[10:])
            await feed.push(parser.finish())
            await feed.flush(heartbeat=True, final=True)
            await commit(settings, await end_offsets(settings))  # everything "read" already
            second = WebWorker(settings, tmp_path / "second")
            try:
                await second.wait_ready()
                await wait_done(second, timeout_s=120)
                topics = await published(settings)
                log_text = second.log_text()
            finally:
                second.kill()
        finally:
            await publisher.stop()
        return (*topics, log_text)

    live, alerts, log_text = asyncio.run(scenario())
    assert_same(live, alerts, snapshots, expected_alerts)
    assert '"filling an offset gap"' in log_text and "Crashed" not in log_text
