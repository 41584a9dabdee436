"""`python -m bench ledger`: the notifier's start-up read of its deliveries ledger after N past deliveries.

On a fresh embedded broker (Tansu: it never compacts, so every record ever written stays on the topic), the
ledger state (`LedgerState`) makes the records a notifier writes for N deliveries — an outcome per delivery, then
on acknowledgement the alert's state, the partition's read offset and the outcome's tombstone — for `--alerts`
alerts firing and resolving in turns, a minute of event time per round; a fast producer writes them (in the
partitions the notifier's writer uses), and the notifier's `LedgerWriter` restates the ledger and moves its
checkpoint whenever it would have (`restatement_due`). Then it times the start-up
read (`read_ledger`, from the ledger's checkpoint) `--runs` times, and once a read of the whole topic from the
beginning (what a reader without the checkpoint reads). Every read includes the reader's 1 s idle wait at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from agents import kafka_clients
from agents.embedded_broker import EmbeddedBroker
from agents.notify.ledger import LedgerWriter, ledger_partition, read_ledger
from agents.topic_reader import topic_messages
from agents.topics import TopicSpec, ensure_topics
from pipeline.notify.keys import delivery_key
from pipeline.notify.ledger_state import Acknowledged, LedgerState, Write
from pipeline.notify.routing import AlertStatus
from schemas.deliveries import AlertSource, Delivery

TOPIC = "bench.deliveries"
PARTITIONS = 4
START_MS = 1_767_700_800_000


def outcome(fingerprint: str, transition: str, offset: int) -> Delivery:
    key = delivery_key(fingerprint, transition, "pagerduty")
    return Delivery.model_construct(
        v=1, key=key, fingerprint=fingerprint, transition=transition, channel="pagerduty",
        kind="trigger" if transition.startswith("firing") else "resolve", outcome="delivered", attempts=1,
        finished_at="2026-01-06T12:00:00.000Z", rule="bench", severity="CRITICAL",
        source=AlertSource.model_construct(partition=offset % 4, offset=offset // 4))


async def write_history(bootstrap: str, deliveries: int, alerts: int, batch: int) -> tuple[int, float]:
    """Record `deliveries` deliveries as the notifier would; (records written, seconds)."""
    state = LedgerState()
    writer = LedgerWriter(bootstrap, TOPIC, "bench.notify.deadletter", state)
    await writer.start()
    producer = kafka_clients.producer(bootstrap, security=kafka_clients.PLAINTEXT, linger_ms=5, max_batch_size=1 << 20)
    await producer.start()
    started = time.perf_counter()
    written = 0

    async def send(writes: list[Write]) -> None:
        futures = []
        for key, value in writes:
            raw = key.encode()
            futures.append(await producer.send(TOPIC, value, key=raw, partition=ledger_partition(raw, PARTITIONS)))
        for future in futures:
            meta = await future
            state.ends[meta.partition] = max(state.ends.get(meta.partition, 0), meta.offset + 1)
        if writer.restatement_due(len(writes)):
            await writer.restate()

    fingerprints = [f"{n:016x}" for n in range(alerts)]
    try:
        for first in range(0, deliveries, batch):
            records, acked = [], []
            for n in range(first, min(first + batch, deliveries)):
                fingerprint, round_ = fingerprints[n % alerts], n // alerts
                firing = round_ % 2 == 0
                window_end_ms = START_MS + round_ * 60_000
                transition = f"{'firing' if firing else 'resolved'}@{window_end_ms}"
                records.append(outcome(fingerprint, transition, n))
                acked.append(Acknowledged(n % 4, n // 4, AlertStatus(
                    fingerprint, ("pagerduty",) if firing else (), transition, window_end_ms)))
            outcomes = state.record(records)
            await send(outcomes)
            steps, _ = state.acknowledge(acked)
            for step in steps:
                await send(step)
            written += len(outcomes) + sum(len(step) for step in steps)
    finally:
        await producer.stop()
        await writer.stop()
    print(f"history: {deliveries} deliveries of {alerts} alerts, {written} records written "
          f"({writer.restatements} restatements) in {time.perf_counter() - started:.1f} s; "
          f"live: {state.held} records")
    return written, time.perf_counter() - started


async def startup_read(bootstrap: str) -> tuple[LedgerState, float]:
    started = time.perf_counter()
    state = await read_ledger(bootstrap, TOPIC)
    return state, time.perf_counter() - started


async def full_read(bootstrap: str) -> tuple[int, float]:
    started = time.perf_counter()
    state = LedgerState()
    async for message in topic_messages(bootstrap, TOPIC, idle_s=1.0):
        state.load(message.key.decode() if message.key else "", message.value)
    return state.records_read, time.perf_counter() - started


async def run(bootstrap: str, args: argparse.Namespace) -> None:
    await ensure_topics(bootstrap, [TopicSpec(TOPIC, PARTITIONS, compacted=True)])
    await write_history(bootstrap, args.deliveries, args.alerts, args.batch)
    for run_number in range(1, args.runs + 1):
        state, seconds = await startup_read(bootstrap)
        print(f"start-up read {run_number}: {seconds:.2f} s, {state.records_read} records read, held: "
              f"{len(state.alerts)} alert states, {len(state.deliveries)} deliveries, {len(state.read)} read offsets")
    if args.full:
        records, seconds = await full_read(bootstrap)
        print(f"whole topic from the beginning (no checkpoint): {seconds:.2f} s, {records} records read")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench ledger")
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=1_000, help="distinct alerts (fingerprints)")
    parser.add_argument("--batch", type=int, default=5_000, help="deliveries acknowledged together")
    parser.add_argument("--runs", type=int, default=3, help="start-up reads to time")
    parser.add_argument("--full", action=argparse.BooleanOptionalAction, default=True,
                        help="also time a read of the whole topic (default on)")
    args = parser.parse_args(argv)
    with EmbeddedBroker() as broker:
        asyncio.run(run(broker.bootstrap, args))
    return 0
