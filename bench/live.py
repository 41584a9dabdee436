"""`python -m bench live`: one metrics worker through the embedded broker vs the raw-consumer floor.

All read the same records (LogBatch messages of up to 500 records, as ingest sends them):
- floor (the target's): aiokafka `getmany` + orjson + dict counting per (endpoint, minute) over the records as
  version 1 row batches ({"v": 1, "records": [...]}, another topic) — the Python floor issue 18 measured, a
  consumer that reads every record as a JSON object;
- tailwatch: `tailwatch worker` (Faust) on the logs topic as ingest writes it (columnar batches), from ready to the
  last endpoint pane snapshot on the metrics topic (the logs stage's progress and held alerts there are not
  counted; the count's consumer polls with a short fetch wait, so it sees the last snapshot when it is written);
- columnar read (information, no target): the same floor over the logs topic as ingest writes it, decoding the
  three columns it counts (base64 + numpy) — how fast a consumer can read columns it does not aggregate.
Each with its CPU seconds (the worker's from /proc) beside the wall time: steadier on a shared machine.
Prints the worker's start-up (process start to its "worker ready" log line; target ≤ 5 s on the embedded broker),
records/s of each, the load average, and a last line `ratio=<tailwatch records/s / floor records/s>` (target
≥ 1.0); exits 1 when either target is missed. `python -m bench peers` adds bytewax beside the worker.

`--profile FILE` samples the worker with py-spy (`pip install 'tailwatch[bench]'`; found next to this Python or
on PATH); with it the start-up includes py-spy's own.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import TopicPartition

from agents import kafka_clients
from agents.commands.ingest import log_topic_specs
from agents.embedded_broker import EmbeddedBroker
from agents.ingest import IngestConfig, Ingestor
from agents.publisher import LOG_TOPIC_MAX_MESSAGE_BYTES, Publisher
from agents.settings import KafkaSettings
from agents.topics import ensure_topics
from bench._targets import load_text, met, target_text, verdict
from bench.push import process_cpu_s
from pipeline.parsing import ParseOutput

BASE_MS = 1_767_700_800_000
ENDPOINTS = ["/api/public/factory/templates", "/api/public/factory/templates/:slug",
             "/api/public/factory/capabilities", "/api/public/factory/capabilities/free",
             "/api/public/factory/build-specs", "/api/public/factory/build-specs/:runId", "/api/health",
             "/api/factory/templates"]
RATIO_TARGET = 1.0  # the worker's records/s over the floor's (aiokafka + orjson on the records as rows)
STARTUP_TARGET_S = 5.0  # process start to ready, on the embedded broker
# The snapshot count's fetch long-poll: with aiokafka's default (500 ms) the embedded broker can hold the fetch
# that holds the last snapshot that long, which the worker does not spend.
COUNT_FETCH_WAIT_MS = 10


@dataclass(frozen=True, slots=True)
class Timed:
    seconds: float  # wall time, first record to the last result
    cpu_s: float  # the measured process's CPU time (all its threads) over the same span: steadier on a busy machine


@dataclass(frozen=True, slots=True)
class WorkerRun(Timed):
    startup_s: float  # process start to "worker ready"


def py_spy() -> str | None:
    """The py-spy executable of this Python's environment (a venv's bin need not be on PATH), else PATH's."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which("py-spy")


def make_records(count: int, minutes: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    span = minutes * 60_000
    out = []
    for i in range(count):
        t = BASE_MS + i * span // count + rng.randrange(-3_000, 3_000)
        roll = rng.random()
        status = 500 if roll < 0.02 else 404 if roll < 0.07 else 200
        endpoint = rng.choice(ENDPOINTS)
        out.append({
            "service": "gateway", "worker": "gateway", "endpoint": endpoint, "method": "GET", "path": endpoint,
            "status": status, "outcome": "ok", "event_time_ms": t,
            "duration_ms": round(rng.lognormvariate(3.8, 0.7), 1),
            "duration_source": "log", "cpu_ms": rng.randrange(1, 20), "wall_ms": None, "colo": "IAD",
            "country": "US", "tenant": "t1", "request_id": None, "level": "INFO", "log_endpoint": None,
            "error_code": None, "error_message": None, "truncated": False, "d1": [],
        })
    return out


async def publish(settings: KafkaSettings, records: list[dict[str, Any]], batch_records: int) -> int:
    assert settings.bootstrap
    await ensure_topics(settings.bootstrap, log_topic_specs(settings))
    publisher = Publisher(settings.bootstrap, settings.logs_topic, settings.deadletter_topic, idempotent=False)
    await publisher.start()
    ingestor = Ingestor(publisher, settings.partitions, IngestConfig(batch_records=batch_records))
    feed = ingestor.feed("bench")
    for i in range(0, len(records), 5000):
        await feed.push(ParseOutput(records=records[i:i + 5000]))
    await feed.flush(heartbeat=True, final=True)
    await publisher.stop()
    return publisher.batches_sent


def floor_rows(value: dict[str, Any]) -> Any:
    """(endpoint, event time, status) of each record of a logs-topic value: the rows of a version 1 batch, the
    base64 columns of a columnar one (versions 2 and 3; ingest writes 3), turned into lists with numpy."""
    if value.get("v", 1) == 1:
        return ((r["endpoint"], r["event_time_ms"], r["status"]) for r in value["records"])
    columns = value["columns"]
    endpoints = [endpoint for _service, endpoint in columns["endpoints"]]
    statuses = columns["statuses"]
    return zip((endpoints[i] for i in np.frombuffer(base64.b64decode(columns["endpoint"]), "<i4").tolist()),
               np.frombuffer(base64.b64decode(columns["event_time_ms"]), "<i8").tolist(),
               (statuses[i] for i in np.frombuffer(base64.b64decode(columns["status"]), "<i4").tolist()),
               strict=True)


async def publish_rows(settings: KafkaSettings, records: list[dict[str, Any]], batch_records: int) -> None:
    """The records as version 1 (row) batch values on `settings.logs_topic`, for the floor: what the logs topic
    held before columnar batches (only what the floor reads: {"v": 1, "records": [...]}), round robin."""
    assert settings.bootstrap
    await ensure_topics(settings.bootstrap, log_topic_specs(settings))
    producer = kafka_clients.producer(settings.bootstrap, security=settings.security, max_batch_size=1 << 20,
                                      max_request_size=LOG_TOPIC_MAX_MESSAGE_BYTES)
    await producer.start()
    try:
        sent = []
        for n, i in enumerate(range(0, len(records), batch_records)):
            value = orjson.dumps({"v": 1, "records": records[i:i + batch_records]})
            sent.append(await producer.send(settings.logs_topic, value, partition=n % settings.partitions))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def floor(settings: KafkaSettings, expected_records: int) -> Timed:
    """From the first to the last record, for the raw consumer (in this process)."""
    assert settings.bootstrap
    consumer = kafka_clients.consumer(bootstrap=settings.bootstrap, security=settings.security,
                                      enable_auto_commit=False, auto_offset_reset="earliest",
                                      max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.logs_topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        counts: Counter[tuple[str, int, int]] = Counter()
        seen = 0
        first = None
        while seen < expected_records:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for messages in batch.values():
                for message in messages:
                    if first is None:
                        first, first_cpu = time.perf_counter(), time.process_time()
                    for endpoint, event_time_ms, status in floor_rows(orjson.loads(message.value)):
                        counts[(endpoint, event_time_ms // 60_000, status // 100)] += 1
                        seen += 1
        assert first is not None
        return Timed(time.perf_counter() - first, time.process_time() - first_cpu)
    finally:
        await consumer.stop()


def is_pane_snapshot(key: bytes | None) -> bool:
    """An endpoint pane snapshot, by its key `service|endpoint`: the metrics topic also carries the logs stage's
    progress (key `progress/<partition>`) and held alerts (key: the service, here `gateway`) for the service stage,
    which are not results. The key, not the value: parsing the snapshots (12 MB) would take CPU from the machine
    while the worker runs."""
    return key is not None and b"|" in key


async def count_snapshots(settings: KafkaSettings, expected: int, timeout_s: float) -> float:
    """Wait for `expected` endpoint pane snapshots on the metrics topic (other values there are not counted);
    returns the perf_counter time of the last one."""
    assert settings.bootstrap
    consumer = kafka_clients.consumer(bootstrap=settings.bootstrap, security=settings.security,
                                      enable_auto_commit=False, auto_offset_reset="earliest",
                                      fetch_max_wait_ms=COUNT_FETCH_WAIT_MS)
    await consumer.start()
    try:
        topic = settings.topic("metrics")
        deadline = time.monotonic() + timeout_s
        while consumer.partitions_for_topic(topic) is None:
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.05)
            if time.monotonic() > deadline:
                raise TimeoutError("no metrics topic")
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got, last = 0, time.perf_counter()
        while got < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{got} of {expected} snapshots")
            batch = await consumer.getmany(timeout_ms=50)
            n = sum(is_pane_snapshot(message.key) for messages in batch.values() for message in messages)
            if n:
                got += n
                last = time.perf_counter()
        return last
    finally:
        await consumer.stop()


def worker_pid(spy_pid: int) -> int:
    """The worker py-spy started (its one child)."""
    children = Path(f"/proc/{spy_pid}/task/{spy_pid}/children").read_text().split()
    return int(children[0]) if children else spy_pid


def run_worker(settings: KafkaSettings, expected_snapshots: int, profile: str | None = None,
               spy: str | None = None) -> WorkerRun:
    """Start `tailwatch worker`; its start-up and the seconds from its ready to its last snapshot. With `profile`,
    py-spy (the executable `spy`) samples the worker into that file (collapsed stacks)."""
    env = {**os.environ, "TAILWATCH_KAFKA_BOOTSTRAP": settings.bootstrap or ""}
    spy_args = os.environ.get("BENCH_SPY_ARGS", "").split()  # e.g. "--gil --threads"
    prefix = [spy, "record", "--format", "raw", "--rate", "250", *spy_args, "--output", profile, "--"] \
        if profile and spy else []
    with tempfile.TemporaryDirectory() as data_dir:
        started = time.perf_counter()
        worker = subprocess.Popen(
            [*prefix, sys.executable, "-m", "agents.cli", "worker", "--topic-prefix", settings.topic_prefix,
             "--data-dir", data_dir], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        assert worker.stderr is not None
        rest: list[str] = []
        drain = threading.Thread(target=lambda: rest.extend(worker.stderr or ()), daemon=True)
        try:
            for line in worker.stderr:
                if '"worker ready"' in line:
                    break
            else:
                raise RuntimeError(f"the worker exited before it was ready (exit code {worker.wait()})")
            measured = worker_pid(worker.pid) if prefix else worker.pid  # under py-spy: its child, the worker
            ready, ready_cpu = time.perf_counter(), process_cpu_s(measured)
            drain.start()  # the worker's later logs must not fill the pipe and stall it
            last = asyncio.run(count_snapshots(settings, expected_snapshots, timeout_s=600))
            cpu = process_cpu_s(measured) - ready_cpu  # to the moment the last snapshot was counted (±50 ms)
            return WorkerRun(last - ready, cpu, ready - started)
        finally:
            worker.send_signal(signal.SIGINT) if prefix else worker.kill()
            worker.wait(timeout=60)
            if drain.is_alive():
                drain.join(timeout=10)
            warnings = [line.rstrip() for line in rest if '"level":"warning"' in line or '"level":"error"' in line]
            if warnings:
                print(f"worker warnings ({len(warnings)}):", *warnings[:5], sep="\n  ")


def rates_text(run: Timed, records: int) -> str:
    return (f"{run.seconds:.2f} s, {records / run.seconds:,.0f} records/s; "
            f"CPU {run.cpu_s:.2f} s, {records / run.cpu_s:,.0f} records per CPU second")


def startup_text(run: WorkerRun) -> str:
    ok = met(run.startup_s, STARTUP_TARGET_S, at_most=True)
    return (f"worker start-up (process start to ready): {run.startup_s:.2f} s "
            f"{target_text(STARTUP_TARGET_S, at_most=True)} s {'met' if ok else 'missed'}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench live")
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-records", type=int, default=500, help="records per Kafka message (ingest default)")
    parser.add_argument("--profile", metavar="FILE", help="sample the worker with py-spy into FILE")
    args = parser.parse_args(argv)
    spy = py_spy() if args.profile else None
    if args.profile and spy is None:
        print("--profile needs py-spy, which is not installed next to this Python or on PATH: "
              "pip install 'tailwatch[bench]' (or pip install py-spy)", file=sys.stderr)
        return 2
    records = make_records(args.records, args.minutes, args.seed)
    panes = len({(r["endpoint"], r["event_time_ms"] // 60_000) for r in records})
    with EmbeddedBroker() as broker:
        settings = KafkaSettings(broker.bootstrap, f"bench{int(time.time())}", 4, 1)
        started = time.perf_counter()
        batches = asyncio.run(publish(settings, records, args.batch_records))
        print(f"published {len(records)} records in {batches} batches "
              f"({len(records) / (time.perf_counter() - started):,.0f} records/s)")
        rows = KafkaSettings(broker.bootstrap, f"{settings.topic_prefix}rows", settings.partitions, 1)
        asyncio.run(publish_rows(rows, records, args.batch_records))
        floor_run = asyncio.run(floor(rows, len(records)))
        print(f"floor (aiokafka getmany + orjson + dicts, the records as row batches): "
              f"{rates_text(floor_run, len(records))}")
        columnar = asyncio.run(floor(settings, len(records)))
        print(f"columnar read (the same over the logs topic as ingest wrote it; information, no target): "
              f"{rates_text(columnar, len(records))}")
        worker = run_worker(settings, panes, args.profile, spy)
        print(f"tailwatch worker: {rates_text(worker, len(records))}, {panes} pane snapshots")
    if args.profile:
        print(f"profile: {args.profile}")
    print(startup_text(worker))
    print(load_text())
    print(f"tailwatch/columnar read: {columnar.seconds / worker.seconds:.3f} (records/s), "
          f"{columnar.cpu_s / worker.cpu_s:.3f} (per CPU second)")
    print(f"per CPU second: tailwatch/floor {floor_run.cpu_s / worker.cpu_s:.3f}")
    return verdict(floor_run.seconds / worker.seconds, RATIO_TARGET,
                   also_met=met(worker.startup_s, STARTUP_TARGET_S, at_most=True))
