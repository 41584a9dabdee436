"""Traffic over several logs partitions, run through stage 1 (one `Replay` per partition, as ingest stamps it) into
the metrics-topic messages each partition sends, for the service-stage tests."""

from __future__ import annotations

import random
from typing import Any

import orjson

from pipeline.partition_operator import Step
from pipeline.partitioning import Partitioner
from pipeline.replay import Replay
from pipeline.rules.compiled import compile_rules
from pipeline.rules.engine import RuleEngine
from pipeline.service import ServiceOperator, ServiceStep, service_snapshot, stage_messages
from pipeline.windows import PANE_MS
from schemas.rules import RuleFile
from tests.test_pipeline.records import BASE_MS, record

ENDPOINTS = {"svc": [f"/api/{name}" for name in "abcdefgh"], "api": ["/v1/x", "/v1/y", "/v1/z"]}

RULES = RuleFile.model_validate({
    "rules": [
        {"name": "svc-busy", "group_by": ["service"], "condition": "total > 150", "for": "2m",
         "severity": "MEDIUM", "channels": ["slack"]},
        {"name": "ep-errors", "condition": "error_rate > 0.3", "severity": "HIGH", "min_requests": 3},
        {"name": "ep-slow", "condition": "p95_ms > 500", "severity": "LOW"},
    ],
    "inhibit": [{"source": "svc-busy", "targets": ["ep-errors"], "equal": ["service"]}],
})


def engines(stage: str) -> RuleEngine:
    return RuleEngine(compile_rules(RULES), RULES, "hash", stage=stage)  # type: ignore[arg-type]


def traffic(minutes: int = 20, seed: int = 5) -> list[dict[str, Any]]:
    """`svc` is busy (~200/min over 8 endpoints) from minute 5 to 12, `/api/b` fails from 6 to 10; `api` is quiet
    and slow from minute 14. Arrivals up to 5 s out of order."""
    rng = random.Random(seed)
    out = []
    for minute in range(minutes):
        busy = 5 <= minute < 12
        for service, endpoints in ENDPOINTS.items():
            count = 200 if service == "svc" and busy else 40
            for i in range(count):
                t = BASE_MS + minute * PANE_MS + i * (PANE_MS // count)
                endpoint = rng.choice(endpoints)
                failing = endpoint == "/api/b" and 6 <= minute < 10
                slow = service == "api" and minute >= 14
                out.append((t + rng.randrange(0, 5_000), len(out), record(
                    t, endpoint, 500 if failing else 200, rng.uniform(600, 900) if slow else rng.uniform(5, 50),
                    service=service)))
    return [r for _arrival, _i, r in sorted(out, key=lambda item: item[:2])]


def partition_steps(records: list[dict[str, Any]], partitions: int, chunk: int = 40,
                    stage1_engines: bool = True) -> list[list[Step]]:
    """Per logs partition, stage 1's steps, in order (ingest's batches of `chunk` records, then its final batch)."""
    partitioner = Partitioner(partitions)
    out = []
    for p in range(partitions):
        mine = [dict(r) for r in records if partitioner.partition(r["service"], r["endpoint"]) == p]
        replay = Replay(lateness_ms=10_000, engine=engines("endpoint") if stage1_engines else None)
        steps = [replay.step("ingest", mine[i:i + chunk]).endpoint for i in range(0, len(mine), chunk)]
        steps.append(replay.step_end("ingest").endpoint)
        out.append(steps)
    return out


def partition_messages(records: list[dict[str, Any]], partitions: int, chunk: int = 40,
                       stage1_engines: bool = True, stage1_alerts: list[dict[str, Any]] | None = None,
                       ) -> list[list[tuple[str | None, dict[str, Any]]]]:
    """Per logs partition, every value its stage 1 sends to the metrics topic, in order, as its JSON decodes (the
    snapshots' digests are JSON text until sent); stage 1's own alerts go to `stage1_alerts`."""
    out = []
    for p, steps in enumerate(partition_steps(records, partitions, chunk, stage1_engines)):
        sent: list[tuple[str | None, dict[str, Any]]] = []
        for step in steps:
            sent += [(service, orjson.loads(orjson.dumps(value)))
                     for service, value in stage_messages(step, p, partitions)]
            if stage1_alerts is not None:
                stage1_alerts += step.alerts
        out.append(sent)
    return out


def interleave(streams: list[list[Any]], seed: int | None) -> list[Any]:
    """One order that keeps each stream's own order: round robin (seed None) or random."""
    rng = random.Random(seed)
    queues = [list(s) for s in streams]
    out = []
    turn = 0
    while any(queues):
        live = [q for q in queues if q]
        queue = live[turn % len(live)] if seed is None else rng.choice(live)
        out.append(queue.pop(0))
        turn += 1
    return out


def drive(operator: ServiceOperator, values: list[Any]) -> list[ServiceStep]:
    return [operator.feed(value) for _service, value in values]


def outputs(steps: list[ServiceStep]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Service snapshots and alerts, in the order the steps gave them."""
    snapshots = [service_snapshot(event) for step in steps for event in step.closed]
    alerts = [alert for step in steps for alert in step.alerts]
    return snapshots, alerts
