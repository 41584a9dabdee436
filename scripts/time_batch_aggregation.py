"""The worker's per-batch aggregation speed: `PartitionOperator.feed_message` over the messages ingest would publish
for generated records (500 a batch, one partition), decode, counting, pane closes and (with `rules`) the default
rules. Runs on whichever tree is on PYTHONPATH: row batches (version 1) where there is no columnar encoder, columnar
ones (version 2) where there is, so the same command times before and after:

    PYTHONPATH=/work/main python scripts/time_batch_aggregation.py 8 200000 100
    PYTHONPATH=$PWD      python scripts/time_batch_aggregation.py 8 200000 100 rules

Arguments: endpoints, records, minutes of traffic they spread over (default 100), and `rules` to run the rules.
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

import orjson

from agents.rules_files import load_rules
from pipeline.batching import BatchBuilder
from pipeline.partition_operator import PartitionOperator
from pipeline.rules.engine import RuleEngine

BASE_MS = 1_767_700_800_000


def generated(endpoints: int, total: int, minutes: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)  # noqa: S311 - test data
    routes = [f"/api/e{i}" for i in range(endpoints)]
    records = []
    for i in range(total):
        d1 = [{"database": "db", "table": "t", "query_type": "read", "duration_ms": 1.5, "rows_read": 3,
               "rows_written": 0, "error_code": None}] if i % 5 == 0 else []
        route = routes[i % endpoints]
        records.append({
            "service": "svc", "worker": "svc", "endpoint": route, "method": "GET", "path": route,
            "status": 200 if rng.random() > 0.05 else 503, "outcome": "ok",
            "event_time_ms": BASE_MS + i * minutes * 60_000 // total + rng.randrange(0, 3000),
            "duration_ms": float(rng.randrange(5, 400)), "duration_source": "log", "cpu_ms": rng.randrange(1, 20),
            "wall_ms": 40, "colo": "IAD", "country": "US", "tenant": "t", "request_id": f"r{i}", "level": "INFO",
            "log_endpoint": None, "log_service": None, "error_code": None, "error_message": None, "truncated": False,
            "d1": d1, "entrypoint": None, "execution_model": "stateless"})
    return records


def main(argv: list[str]) -> None:
    endpoints, total = int(argv[0]), int(argv[1])
    minutes = int(argv[2]) if len(argv) > 2 else 100
    with_rules = len(argv) > 3
    builder = BatchBuilder("p", "bench", 1, max_records=500)
    batches = builder.add(generated(endpoints, total, minutes)) + builder.flush(final=True)
    try:
        from pipeline.columnar_batches import encode_columnar  # noqa: PLC0415 - absent before columnar batches
        values, kind = [encode_columnar(b) for b in batches], "v2"
    except ImportError:
        values, kind = [orjson.dumps(b) for b in batches], "v1"
    engine = None
    if with_rules:
        rules = load_rules()
        engine = RuleEngine(rules.compiled, rules.rule_file, rules.sha256)
    operator = PartitionOperator(engine)
    closed = 0
    start = time.perf_counter()
    for offset, value in enumerate(values):
        closed += len(operator.feed_message(value, offset).closed)
    elapsed = time.perf_counter() - start
    print(f"{kind} endpoints={endpoints} records={total} minutes={minutes} rules={with_rules} "
          f"batches={len(values)} panes={closed} {elapsed:.3f}s {total / elapsed / 1000:.0f}k rec/s "
          f"{elapsed / len(values) * 1e6:.0f} us/batch")


if __name__ == "__main__":
    main(sys.argv[1:])
