"""`python -m bench peers`: the tailwatch worker beside bytewax and the raw floor, on the same records, same run.

One embedded broker, the same `--records` (as `bench live`: 8 endpoints, ~2 % 5xx, ~5 % 404, seeded):
- floor: aiokafka `getmany` + orjson + dict counting per (endpoint, minute) over the logs topic as ingest writes
  it (columnar LogBatch messages of up to 500 records, the three counted columns decoded) — `bench live`'s
  "columnar read", not its target's floor (which reads the records as row batches);
- tailwatch: `tailwatch worker` on that logs topic, from ready to the last pane snapshot — `bench live`'s run;
- bytewax (`pip install 'tailwatch[bench]'`): one worker (`run_main`, in a child process) reading the same records
  from a topic of one record per message keyed by endpoint (a stream processor's usual input; bytewax's
  KafkaSource, confluent-kafka), orjson per message, and the same per-endpoint 1-minute aggregation: an event-time
  tumbling window (`fold_window`, unordered, 10 s of allowed disorder) counting requests, 4xx, 5xx and 404s and
  building each pane's t-digest of durations (fastdigest) for p50/p95/p99 when it closes. Timed from its first
  record to the end of the dataflow (every window emitted: the source stops at the end of the topic).

Prints each one's records/s, the ratios, the load average and a last line `ratio=<tailwatch records/s / bytewax
records/s>` (target ≥ 2.0); exits 1 when missed or when bytewax did not count every record.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import subprocess
import sys
import time
import zlib
from typing import Any

import orjson

from agents import kafka_clients
from agents.embedded_broker import EmbeddedBroker
from agents.settings import KafkaSettings
from agents.topics import TopicSpec, ensure_topics
from bench._targets import load_text, verdict
from bench.live import Timed, floor, make_records, publish, rates_text, run_worker, startup_text

TARGET = 2.0  # the worker's records/s over bytewax's
ALLOWED_DISORDER_S = 10  # bytewax's EventClock wait: the records are up to ±3 s out of order
PANE_MINUTES = 1


async def publish_per_record(settings: KafkaSettings, topic: str, records: list[dict[str, Any]]) -> None:
    """Each record its own message, keyed and partitioned by endpoint (sent in batches, for speed)."""
    assert settings.bootstrap
    partitions = settings.partitions
    await ensure_topics(settings.bootstrap, [TopicSpec(topic, partitions)])
    producer = kafka_clients.producer(settings.bootstrap, security=settings.security, max_batch_size=256 << 10)
    await producer.start()
    try:
        batches = [producer.create_batch() for _ in range(partitions)]
        sent = []
        for record in records:
            key = record["endpoint"].encode()
            partition = zlib.crc32(key) % partitions
            value = orjson.dumps(record)
            if batches[partition].append(key=key, value=value, timestamp=None) is None:
                sent.append(await producer.send_batch(batches[partition], topic, partition=partition))
                batches[partition] = producer.create_batch()
                batches[partition].append(key=key, value=value, timestamp=None)
        for partition, batch in enumerate(batches):
            if batch.record_count():
                sent.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def bytewax_run(bootstrap: str, topic: str) -> dict[str, float]:
    """The bytewax dataflow, run to the end of `topic` in this process (the child's job)."""
    started = time.perf_counter()
    from datetime import UTC, datetime, timedelta

    import bytewax.operators as op
    from bytewax.connectors.kafka import KafkaSource
    from bytewax.dataflow import Dataflow
    from bytewax.operators import windowing as win
    from bytewax.testing import TestingSink, run_main
    from fastdigest import TDigest

    first: list[float] = []  # wall and CPU time at the first record

    def parse(message: Any) -> dict[str, Any]:
        if not first:
            first.extend((time.perf_counter(), time.process_time()))
        record: dict[str, Any] = orjson.loads(message.value)
        return record

    def event_time(record: dict[str, Any]) -> datetime:
        return datetime.fromtimestamp(record["event_time_ms"] / 1000, tz=UTC)

    def new_pane() -> list[Any]:
        return [0, 0, 0, 0, []]  # requests, 4xx, 5xx, 404, durations

    def add(pane: list[Any], record: dict[str, Any]) -> list[Any]:
        status = record["status"]
        pane[0] += 1
        if status >= 500:
            pane[2] += 1
        elif status >= 400:
            pane[1] += 1
            pane[3] += status == 404
        pane[4].append(record["duration_ms"])
        return pane

    def merge(a: list[Any], b: list[Any]) -> list[Any]:
        return [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4]]

    def close(item: tuple[str, tuple[int, list[Any]]]) -> tuple[Any, ...]:
        endpoint, (window_id, pane) = item
        digest = TDigest.from_values(pane[4])
        return (endpoint, window_id, *pane[:4], digest.quantile(0.5), digest.quantile(0.95), digest.quantile(0.99))

    flow = Dataflow("bench_peers")
    messages = op.input("kafka", flow, KafkaSource([bootstrap], [topic], tail=False))
    keyed = op.key_on("endpoint", op.map("parse", messages, parse), lambda record: record["endpoint"])
    clock = win.EventClock(event_time, wait_for_system_duration=timedelta(seconds=ALLOWED_DISORDER_S))
    windower = win.TumblingWindower(length=timedelta(minutes=PANE_MINUTES), align_to=datetime(2026, 1, 1, tzinfo=UTC))
    panes = win.fold_window("pane", keyed, clock, windower, new_pane, add, merge, ordered=False)
    closed: list[tuple[Any, ...]] = []
    late: list[Any] = []
    op.output("panes", op.map("close", panes.down, close), TestingSink(closed))
    op.output("late", panes.late, TestingSink(late))
    run_main(flow)
    ended, ended_cpu = time.perf_counter(), time.process_time()
    if not first:
        raise RuntimeError("bytewax read no record")
    return {"startup_s": first[0] - started, "seconds": ended - first[0], "cpu_s": ended_cpu - first[1],
            "panes": len(closed),
            "records": sum(pane[2] for pane in closed), "late": len(late)}


def run_bytewax(bootstrap: str, topic: str) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-m", "bench", "peers", "--bytewax-child", bootstrap, topic],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"the bytewax run failed ({result.returncode}): {result.stderr[-2000:]}")
    measured: dict[str, float] = orjson.loads(result.stdout.splitlines()[-1])
    return measured


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench peers")
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-records", type=int, default=500, help="records per Kafka message for tailwatch")
    parser.add_argument("--bytewax-child", nargs=2, metavar=("BOOTSTRAP", "TOPIC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if importlib.util.find_spec("bytewax") is None or importlib.util.find_spec("confluent_kafka") is None:
        print("bench peers needs bytewax and confluent-kafka: pip install 'tailwatch[bench]'", file=sys.stderr)
        return 2
    if args.bytewax_child:
        print(orjson.dumps(bytewax_run(*args.bytewax_child)).decode())
        return 0
    records = make_records(args.records, args.minutes, args.seed)
    count = len(records)
    panes = len({(r["endpoint"], r["event_time_ms"] // 60_000) for r in records})
    with EmbeddedBroker() as broker:
        settings = KafkaSettings(broker.bootstrap, f"bench{int(time.time())}", 4, 1)
        per_record_topic = f"{settings.topic_prefix}.records"
        started = time.perf_counter()
        batches = asyncio.run(publish(settings, records, args.batch_records))
        asyncio.run(publish_per_record(settings, per_record_topic, records))
        print(f"published {count:,} records twice: in {batches} LogBatch messages, and one per message "
              f"({time.perf_counter() - started:.1f} s); {panes} endpoint-minutes")
        del records
        floor_run = asyncio.run(floor(settings, count))
        worker = run_worker(settings, panes)
        bytewax = run_bytewax(broker.bootstrap, per_record_topic)
    bytewax_timed = Timed(bytewax["seconds"], bytewax["cpu_s"])
    print(f"floor (aiokafka getmany + orjson + dicts over the columnar logs topic): {rates_text(floor_run, count)}")
    print(f"tailwatch worker: {rates_text(worker, count)}; start-up {worker.startup_s:.2f} s")
    print(f"bytewax (1 worker, 1 record per message): {rates_text(bytewax_timed, count)}; {bytewax['panes']:.0f} "
          f"panes, {bytewax['late']:.0f} late; start-up {bytewax['startup_s']:.2f} s")
    for basis, of in (("ratios (records/s)", lambda run: run.seconds), ("per CPU second", lambda run: run.cpu_s)):
        print(f"{basis}: tailwatch/floor {of(floor_run) / of(worker):.3f}, bytewax/floor "
              f"{of(floor_run) / of(bytewax_timed):.3f}, tailwatch/bytewax {of(bytewax_timed) / of(worker):.3f}")
    print(startup_text(worker))
    complete = bytewax["records"] == count and bytewax["panes"] == panes
    print(f"check: {'ok' if complete else 'bytewax counted'} {bytewax['records']:.0f} of {count} records in "
          f"{bytewax['panes']:.0f} of {panes} panes")
    print(load_text())
    return verdict(bytewax_timed.seconds / worker.seconds, TARGET, also_met=complete)
