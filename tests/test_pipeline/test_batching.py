"""BatchBuilder: per-partition batches of records, sequence numbers, heartbeats and the watermark."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.batching import BatchBuilder
from pipeline.partitioning import partition_for_key
from schemas.envelopes import LogBatch
from tests.test_pipeline.records import BASE_MS, record

ENDPOINTS = [f"/api/e{i}" for i in range(12)]


def partition_of(endpoint: str, partitions: int = 4) -> int:
    return partition_for_key(f"svc|{endpoint}".encode(), partitions)


def builder(max_records: int = 3, lateness_ms: int = 1_000, partitions: int = 4) -> BatchBuilder:
    return BatchBuilder("ingest-1", "capture.json", partitions, max_records=max_records, lateness_ms=lateness_ms)


def check(batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for batch in batches:
        LogBatch.model_validate(batch)
        assert {partition_of(r["endpoint"]) for r in batch["records"]} <= {batch["partition"]}
    return batches


def test_the_endpoints_used_here_cover_every_partition() -> None:
    assert {partition_of(endpoint) for endpoint in ENDPOINTS} == {0, 1, 2, 3}


def test_records_go_to_the_partition_of_their_group_key() -> None:
    batches = builder(max_records=100)
    assert batches.add(record(BASE_MS + i, endpoint) for i, endpoint in enumerate(ENDPOINTS)) == []
    assert batches.pending == 12
    out = check(batches.flush())
    assert sorted(batch["partition"] for batch in out) == [0, 1, 2, 3]
    for batch in out:
        expected = [endpoint for endpoint in ENDPOINTS if partition_of(endpoint) == batch["partition"]]
        assert [r["endpoint"] for r in batch["records"]] == expected
    assert batches.pending == 0 and batches.flush() == []


def test_a_batch_is_sent_when_it_is_full() -> None:
    batches = builder(max_records=3)
    endpoint = ENDPOINTS[0]
    full = check(batches.add(record(BASE_MS + i, endpoint) for i in range(7)))
    assert [len(batch["records"]) for batch in full] == [3, 3]
    assert [batch["seq"] for batch in full] == [0, 1]
    assert [r["event_time_ms"] for batch in full for r in batch["records"]] == [BASE_MS + i for i in range(6)]
    assert batches.pending == 1
    rest = check(batches.flush())
    assert [(batch["seq"], len(batch["records"])) for batch in rest] == [(2, 1)]


def test_batch_envelope() -> None:
    batches = builder(max_records=1, lateness_ms=500)
    (batch,) = batches.add([record(BASE_MS, ENDPOINTS[0])])
    assert {key: value for key, value in batch.items() if key != "records"} == {
        "v": 1, "producer": "ingest-1", "source": "capture.json", "seq": 0, "partition": partition_of(ENDPOINTS[0]),
        "watermark_ms": BASE_MS - 500, "final": False}


def test_seq_counts_per_partition() -> None:
    batches = builder(max_records=1)
    a, b = ENDPOINTS[0], next(e for e in ENDPOINTS if partition_of(e) != partition_of(ENDPOINTS[0]))
    out = check(batches.add([record(BASE_MS, a), record(BASE_MS, b), record(BASE_MS, a), record(BASE_MS, a),
                             record(BASE_MS, b)]))
    assert [(batch["partition"] == partition_of(a), batch["seq"]) for batch in out] == [
        (True, 0), (False, 0), (True, 1), (True, 2), (False, 1)]
    heartbeat = check(batches.flush(heartbeat=True))
    assert {batch["partition"]: batch["seq"] for batch in heartbeat}[partition_of(a)] == 3


def test_watermark_is_max_event_time_minus_lateness() -> None:
    batches = builder(max_records=100, lateness_ms=10_000)
    assert batches.watermark_ms is None
    times = [BASE_MS + 5_000, BASE_MS + 20_000, BASE_MS + 1_000, BASE_MS + 30_000, BASE_MS + 29_000]
    records = [record(t, ENDPOINTS[i]) for i, t in enumerate(times)]
    batches.add(records)
    assert batches.watermark_ms == BASE_MS + 20_000
    # each record carries the watermark as it was read, itself included
    assert [r["watermark_ms"] for r in records] == [BASE_MS - 5_000, BASE_MS + 10_000, BASE_MS + 10_000,
                                                    BASE_MS + 20_000, BASE_MS + 20_000]
    assert {batch["watermark_ms"] for batch in check(batches.flush())} == {BASE_MS + 20_000}


def test_heartbeats_only_once_there_is_a_watermark() -> None:
    batches = builder()
    assert batches.flush(heartbeat=True) == []
    batches.add([record(BASE_MS, ENDPOINTS[0])])
    out = check(batches.flush(heartbeat=True))
    assert sorted(batch["partition"] for batch in out) == [0, 1, 2, 3]
    assert [len(batch["records"]) for batch in out if batch["partition"] == partition_of(ENDPOINTS[0])] == [1]
    assert sum(len(batch["records"]) for batch in out) == 1
    assert {batch["watermark_ms"] for batch in out} == {BASE_MS - 1_000}
    again = check(batches.flush(heartbeat=True))
    assert [(batch["seq"], batch["records"]) for batch in again] == [(1, [])] * 4
    assert batches.flush() == []  # without heartbeat, empty partitions send nothing


def test_final_flush_marks_every_partition() -> None:
    batches = builder()
    batches.add([record(BASE_MS, ENDPOINTS[0])])
    out = check(batches.flush(final=True))
    assert sorted(batch["partition"] for batch in out) == [0, 1, 2, 3]
    assert all(batch["final"] for batch in out)
    assert sum(len(batch["records"]) for batch in out) == 1
    empty = builder().flush(final=True)  # even with nothing read: consumers learn the input ended
    assert [(batch["final"], batch["watermark_ms"], batch["records"]) for batch in empty] == [(True, None, [])] * 4


@pytest.mark.parametrize(("kwargs", "message"), [({"max_records": 0}, "max_records"),
                                                 ({"lateness_ms": -1}, "lateness_ms"),
                                                 ({"partitions": 0}, "num_partitions")])
def test_invalid_settings(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        builder(**kwargs)


steps = st.lists(
    st.one_of(
        st.lists(st.tuples(st.integers(0, 120_000), st.sampled_from(ENDPOINTS)), max_size=12).map(
            lambda rows: ("add", rows)),
        st.sampled_from([("flush", False), ("flush", True)]),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(steps, st.integers(1, 5), st.integers(0, 30_000))
def test_batch_stream_invariants(plan: list[tuple[str, Any]], max_records: int, lateness: int) -> None:
    batches = builder(max_records=max_records, lateness_ms=lateness)
    sent: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    for action, arg in plan:
        if action == "add":
            rows = [record(BASE_MS + t, endpoint) for t, endpoint in arg]
            added += rows
            sent += check(batches.add(rows))
        else:
            sent += check(batches.flush(heartbeat=arg))
    sent += check(batches.flush(final=True))
    # every record is sent exactly once, in the order it was added within its partition
    assert sorted(id(r) for batch in sent for r in batch["records"]) == sorted(id(r) for r in added)
    by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for batch in sent:
        assert len(batch["records"]) <= max_records
        by_partition[batch["partition"]].append(batch)
    for partition, batches_of in by_partition.items():
        assert [batch["seq"] for batch in batches_of] == list(range(len(batches_of)))
        in_order = [r for batch in batches_of for r in batch["records"]]
        assert in_order == [r for r in added if partition_of(r["endpoint"]) == partition]
        assert batches_of[-1]["final"] and not any(batch["final"] for batch in batches_of[:-1])
        # a batch's stamp never exceeds the record watermark of a record sent after it on its partition
        for i, batch in enumerate(batches_of):
            later = [r["watermark_ms"] for b in batches_of[i + 1:] for r in b["records"]]
            if batch["watermark_ms"] is not None and later:
                assert batch["watermark_ms"] <= min(later)
    top = max((r["event_time_ms"] for r in added), default=None)
    assert batches.watermark_ms == (None if top is None else top - lateness)
