"""Columnar log batches (version 3; version 2 still read): the same panes and alerts as row batches (version 1,
older topics) and as a file replay, the same counts as counting record by record, rows that come back exactly,
coded fields, and a clear reason for columns that do not fit together."""

from __future__ import annotations

import base64
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agents.rules_files import load_rules
from agents.topic_values import decode_log_batch
from pipeline.batching import BatchBuilder
from pipeline.columnar_batches import InvalidColumns, coded_field, encode_columnar, field_values, records_of_batch
from pipeline.log_batches import InvalidLogBatch, decode_pane_batch
from pipeline.metrics import snapshot
from pipeline.pane_store import PaneStore
from pipeline.panes import CONNECTION_FAILED, status_class
from pipeline.parsing import LogParser
from pipeline.partition_operator import PartitionOperator
from pipeline.replay import Replay
from pipeline.rules.engine import RuleEngine
from pipeline.sketches import digest_of
from pipeline.synthetic import DEMO_START_MS, Incident, TrafficMix, generate_events, render_capture
from pipeline.windows import PANE_MS
from schemas.envelopes import ColumnarLogBatch

MINUTE = 60_000
LATENESS_MS = 10_000


def incidents(start_ms: int) -> tuple[Incident, ...]:
    """Errors, an outage, 404s and D1 connection failures, all in the first few minutes."""
    return (Incident("errors", "/api/public/factory/build-specs", start_ms, start_ms + 4 * MINUTE, 0.3),
            Incident("down", "/api/public/factory/build-specs/:runId", start_ms + MINUTE, start_ms + 3 * MINUTE, 0.85),
            Incident("not_found", "/api/public/factory/templates/:slug", start_ms, start_ms + 5 * MINUTE, 0.4),
            Incident("d1_failures", "/api/public/factory/templates", start_ms, start_ms + 5 * MINUTE, 0.5))


@cache
def traffic(seed: int, minutes: int, disorder_ms: int) -> tuple[dict[str, Any], ...]:
    """Parsed records of generated traffic, in arrival order (deliveries up to `disorder_ms` late)."""
    events = generate_events(seed, DEMO_START_MS, minutes, 240, disorder_ms=disorder_ms, mix=TrafficMix(),
                             incidents=incidents(DEMO_START_MS))
    parser = LogParser("generated")
    records: list[dict[str, Any]] = []
    for chunk in render_capture(events):
        records += parser.feed(chunk).records
    return tuple(records + parser.finish().records)


def engine() -> RuleEngine:
    rules = load_rules()
    return RuleEngine(rules.compiled, rules.rule_file, rules.sha256)


def batches(records: tuple[dict[str, Any], ...], max_records: int) -> list[dict[str, Any]]:
    builder = BatchBuilder("p1", "generated", 1, max_records=max_records, lateness_ms=LATENESS_MS)
    return builder.add([dict(r) for r in records]) + builder.flush(final=True)


def live(values: list[bytes]) -> tuple[list[bytes], list[bytes], int]:
    operator = PartitionOperator(engine())
    snapshots, alerts, late = [], [], 0
    for offset, value in enumerate(values):
        step = operator.feed_message(value, offset)
        assert step.invalid is None
        snapshots += [orjson.dumps(snapshot(e)) for e in step.closed]
        alerts += [orjson.dumps(a) for a in step.alerts]
        late += step.late
    return snapshots, alerts, late


def replayed(records: tuple[dict[str, Any], ...], chunk: int) -> tuple[list[bytes], list[bytes], int]:
    replay = Replay(LATENESS_MS, engine=engine())
    snapshots, alerts = [], []
    steps = [replay.step("generated", [dict(r) for r in records[i:i + chunk]]) for i in range(0, len(records), chunk)]
    steps.append(replay.step_end("generated"))
    for step in steps:
        snapshots += [orjson.dumps(snapshot(e)) for e in step.closed]
        alerts += [orjson.dumps(a) for a in step.alerts]
    return snapshots, alerts, replay.late


def without_provenance(alerts: list[bytes]) -> list[bytes]:
    """Alert events with `provenance.input` null, as a file replay gives it (the input offsets are live-only)."""
    out = []
    for raw in alerts:
        alert = orjson.loads(raw)
        alert["provenance"]["input"] = None
        out.append(orjson.dumps(alert))
    return out


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # a shrink would replay traffic for minutes
@given(seed=st.integers(0, 50), minutes=st.integers(3, 6), disorder_ms=st.sampled_from([0, 3_000, 25_000, 45_000]),
       max_records=st.integers(7, 400), chunk=st.integers(7, 500))
def test_columnar_row_and_replay_give_the_same_panes_and_alerts(seed: int, minutes: int, disorder_ms: int,
                                                                max_records: int, chunk: int) -> None:
    records = traffic(seed, minutes, disorder_ms)
    sent = batches(records, max_records)
    columnar = live([encode_columnar(batch) for batch in sent])
    rows = live([orjson.dumps(batch) for batch in sent])
    assert columnar == rows
    snapshots, alerts, late = replayed(records, chunk)
    assert (columnar[0], without_provenance(columnar[1]), columnar[2]) == (snapshots, alerts, late)


def test_the_generated_traffic_has_late_records_d1_failures_and_alerts() -> None:
    """What the property above compares is not vacuous: late records, D1 connection failures, transitions."""
    records = traffic(7, 7, 45_000)
    snapshots, alerts, late = live([encode_columnar(batch) for batch in batches(records, 200)])
    panes = [orjson.loads(s) for s in snapshots]
    assert late > 0 and sum(p["late_dropped"] for p in panes) == late
    assert sum(p["d1_connection_failures"] for p in panes) > 0
    assert alerts


# Records as hypothesis draws them: every shape a pane field can take.
D1_QUERY = st.fixed_dictionaries({
    "database": st.none() | st.just("db"), "table": st.none() | st.sampled_from(["t", "u"]),
    "query_type": st.sampled_from(["read", "write"]), "duration_ms": st.floats(0, 1e4),
    "rows_read": st.integers(0, 2**40), "rows_written": st.integers(0, 2**40),
    "error_code": st.none() | st.sampled_from([CONNECTION_FAILED, "SQLITE_BUSY"])})
RECORD = st.fixed_dictionaries({
    "service": st.sampled_from(["a", "b"]), "endpoint": st.sampled_from(["/x", "/y", "/z"]),
    "event_time_ms": st.integers(DEMO_START_MS, DEMO_START_MS + 4 * PANE_MS),
    "status": st.none() | st.sampled_from([200, 204, 301, 404, 500, 503, 700, 99]),
    "outcome": st.sampled_from(["ok", "exception", "canceled", "exceededCpu"]),
    "duration_ms": st.none() | st.floats(0, 1e5) | st.integers(0, 10**6),
    "cpu_ms": st.none() | st.floats(0, 1e3) | st.integers(0, 10**4),
    "d1": st.lists(D1_QUERY, max_size=3) | st.just([]),
})


def reference_counts(records: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Each pane's counts and digests, record by record (the definitions in `pipeline.panes`)."""
    panes: dict[tuple[str, str, int], dict[str, Any]] = {}
    for r in records:
        start = r["event_time_ms"] - r["event_time_ms"] % PANE_MS
        pane = panes.setdefault((r["service"], r["endpoint"], start), {
            "total": 0, "classes": Counter(), "status": Counter(), "outcome": Counter(), "durations": [],
            "cpu": [], "d1": Counter(), "d1_durations": []})
        pane["total"] += 1
        pane["classes"][status_class(r["status"], r["outcome"])] += 1
        if r["status"] is not None:
            pane["status"][str(r["status"])] += 1
        pane["outcome"][r["outcome"]] += 1
        if r["duration_ms"] is not None:
            pane["durations"].append(float(r["duration_ms"]))
        if r["cpu_ms"] is not None:
            pane["cpu"].append(float(r["cpu_ms"]))
        for q in r["d1"]:
            pane["d1"].update(d1_queries=1, d1_reads=q["query_type"] == "read", d1_writes=q["query_type"] == "write",
                              d1_connection_failures=q["error_code"] == CONNECTION_FAILED,
                              d1_rows_read=q["rows_read"], d1_rows_written=q["rows_written"])
            pane["d1_durations"].append(q["duration_ms"])
    return panes


@settings(max_examples=150, deadline=None)
@given(records=st.lists(RECORD, max_size=120), cut=st.integers(0, 120))
def test_vectorized_counts_equal_counting_record_by_record(records: list[dict[str, Any]], cut: int) -> None:
    store = PaneStore()
    store.add(records[:cut])  # two batches: a pane's values come from both
    store.add(records[cut:])
    closed = {(e.service, e.endpoint, e.start_ms): e.pane for e in store.close_all()}
    expected = reference_counts(records)
    assert closed.keys() == expected.keys()
    for key, pane in closed.items():
        want = expected[key]
        counts = pane.counts_dict()
        assert counts["total"] == want["total"]
        assert (counts["classes"], counts["status"], counts["outcome"]) == (
            dict(want["classes"]), dict(want["status"]), dict(want["outcome"]))
        assert counts["duration_count"] == len(want["durations"])
        assert counts["duration_sum_ms"] == _batch_sums(records, cut, key)
        for name in ("d1_queries", "d1_reads", "d1_writes", "d1_connection_failures", "d1_rows_read",
                     "d1_rows_written"):
            assert counts[name] == want["d1"][name]
        assert pane.duration_digest == digest_of(want["durations"])
        assert pane.cpu_digest == digest_of(want["cpu"])
        assert pane.d1_digest == digest_of(want["d1_durations"])


def _batch_sums(records: list[dict[str, Any]], cut: int, key: tuple[str, str, int]) -> float:
    """A pane's `duration_sum_ms`: per batch, Python's sum of its durations in record order, added up."""
    total = 0.0
    for part in (records[:cut], records[cut:]):
        mine = [float(r["duration_ms"]) for r in part if r["duration_ms"] is not None
                and (r["service"], r["endpoint"], r["event_time_ms"] - r["event_time_ms"] % PANE_MS) == key]
        total += sum(mine)
    return total


def test_rows_come_back_exactly_and_the_batch_is_the_schema() -> None:
    generated = traffic(3, 5, 3_000)
    odd = [{**generated[0], "status": None, "duration_ms": None, "cpu_ms": None, "wall_ms": None, "path": None},
           {**generated[1], "cpu_ms": 0.25, "duration_ms": 3.5, "watermark_ms": None}]
    records = (*odd, *generated)
    assert any(r["d1"] for r in records) and any(type(r["cpu_ms"]) is int for r in records)
    coded = set()
    for batch in batches(records, 300):
        value = orjson.loads(encode_columnar(batch))
        ColumnarLogBatch.model_validate(value)
        assert value["v"] == 3
        coded |= {name for name, field in (value["other"] | value["d1_other"]).items() if isinstance(field, dict)}
        assert orjson.dumps(records_of_batch(value)) == orjson.dumps(batch["records"])  # values, types, key order
    assert {"method", "colo", "level", "database"} <= coded  # the coded form is what came back


def test_a_row_batch_reads_as_its_records() -> None:
    batch = batches(traffic(3, 3, 0), 50)[0]
    assert records_of_batch(orjson.loads(orjson.dumps(batch))) == batch["records"]


def _columnar(**changes: Any) -> bytes:
    batch = batches(traffic(3, 3, 0), 20)[0]
    value = orjson.loads(encode_columnar(batch))
    for name, data in changes.items():
        value["columns"][name] = data
    return orjson.dumps(value)


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(array.tobytes()).decode()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"event_time_ms": "AAAA"}, "event_time_ms is 3 bytes, not a multiple of 8"),
        ({"status": _b64(np.zeros(3, "<i4"))}, "columns of different lengths"),
        ({"endpoint": _b64(np.full(20, 7, "<i4"))}, "endpoint indexes outside"),
        ({"outcome": _b64(np.full(20, -1, "<i4"))}, "outcome indexes outside"),
        ({"duration_ms": _b64(np.full(20, np.inf, "<f8"))}, "duration_ms holds an infinite value"),
        ({"d1_record": _b64(np.array([5], "<i4")), "d1_write": "AA==", "d1_connection_failed": "AA==",
          "d1_duration_ms": _b64(np.array([-1.0], "<f8")), "d1_rows_read": _b64(np.zeros(1, "<i8")),
          "d1_rows_written": _b64(np.zeros(1, "<i8"))}, "d1_duration_ms holds a negative or missing value"),
        ({"endpoint": "not base64!"}, "`$.columns.endpoint`"),
        ({"endpoints": [["s"]]}, "`$.columns.endpoints[0]`"),
    ],
)
def test_columns_that_do_not_fit_together_are_an_invalid_batch(changes: dict[str, Any], reason: str) -> None:
    value = _columnar(**changes)
    with pytest.raises(InvalidLogBatch) as raised:
        decode_pane_batch(value).pane_columns()
    assert reason in str(raised.value)
    operator = PartitionOperator()
    step = operator.feed_message(value, 4)
    assert step.invalid is not None and reason in step.invalid
    assert (operator.applied_offset, operator.store.open) == (4, {})


def test_records_of_a_batch_with_short_other_fields_is_refused() -> None:
    value = orjson.loads(_columnar())
    value["other"]["wall_ms"] = [1.5] * 19
    with pytest.raises(InvalidColumns, match="`wall_ms` is not a list of 20 values"):
        records_of_batch(value)


FIXTURES = Path(__file__).parents[1] / "fixtures" / "log-batches"


def test_a_version_2_batch_written_before_reads_as_it_did() -> None:
    """A batch the version 2 encoder wrote (every `other` field a list; 60 records, 54 D1 queries) gives the rows it
    gave then, and the same panes as the version 3 batch of those rows."""
    raw = (FIXTURES / "columnar-v2.json").read_bytes()
    value = orjson.loads(raw)
    assert value["v"] == 2 and all(isinstance(field, list) for field in value["other"].values())
    ColumnarLogBatch.model_validate(value)
    rows = records_of_batch(value)
    assert rows == orjson.loads((FIXTURES / "columnar-v2.records.json").read_bytes())
    again = encode_columnar({**{key: value[key] for key in ("producer", "source", "seq", "partition",
                                                           "watermark_ms", "final")}, "records": rows})
    assert orjson.loads(again)["v"] == 3 and len(again) < len(raw)
    assert live([raw]) == live([again])
    assert records_of_batch(orjson.loads(again)) == rows


@pytest.mark.parametrize(
    ("values", "codes"),
    [
        (["GET", "GET", "POST", None, "GET", None], [0, 0, 1, 2, 0, 2]),  # strings and nulls, few distinct: coded
        ([None] * 4, [0, 0, 0, 0]),
        (["a", "b", "c"], None),  # more than half distinct: the list
        ([True, False, True, True], None),  # not strings: the list (True == 1 would share a code)
        ([1, 1.0, 1, 1], None),
        (["1", 1, "1", "1"], None),
        ([], None),
    ],
)
def test_a_field_is_coded_when_its_values_are_few_strings(values: list[Any], codes: list[int] | None) -> None:
    field = coded_field(values)
    if codes is None:
        assert field is values
    else:
        assert isinstance(field, dict)
        assert field["values"] == list(dict.fromkeys(values))
        assert np.frombuffer(field["codes"], "u1").tolist() == codes
    wire = orjson.loads(msgspec.json.encode(field))
    back = field_values("f", wire, len(values), 3)
    assert back == values and [type(v) for v in back] == [type(v) for v in values]


def test_a_field_of_more_than_256_distinct_values_has_two_byte_codes() -> None:
    values = [f"/path/{i % 300}" for i in range(900)]
    field = coded_field(values)
    assert isinstance(field, dict) and len(field["values"]) == 300 and len(field["codes"]) == 1800
    assert field_values("path", orjson.loads(msgspec.json.encode(field)), 900, 3) == values


def test_a_coded_batch_is_half_the_bytes_of_its_lists() -> None:
    """Why version 3: a typical batch (500 records, as `bench live` sends) is less than 55 % of its version 2 size."""
    from bench.live import make_records

    records = make_records(500, 1, 1)
    batch = {"producer": "p", "source": "s", "seq": 0, "partition": 0, "watermark_ms": None, "final": False,
             "records": records}
    coded = encode_columnar(batch)
    value = orjson.loads(coded)
    value["v"] = 2
    value["other"] = {name: field_values(name, field, 500, 3) for name, field in value["other"].items()}
    listed = orjson.dumps(value)
    assert records_of_batch(orjson.loads(listed)) == records_of_batch(orjson.loads(coded))
    assert len(coded) < 0.55 * len(listed)


def _coded(**fields: Any) -> dict[str, Any]:
    value = orjson.loads(_columnar())
    for name, field in fields.items():
        value["other"][name] = field
    return value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (_coded(method={"values": ["GET"], "codes": _b64(np.ones(20, "u1"))}), "method.codes indexes outside 0..0"),
        (_coded(method={"values": ["GET"], "codes": _b64(np.zeros(19, "u1"))}), "`method` has 19 codes, not 20"),
        (_coded(method={"values": ["GET", 7], "codes": _b64(np.zeros(20, "u1"))}), "`method`: `values` is not"),
        (_coded(method={"values": [], "codes": ""}), "`method`: `values` is not a list of 1 to"),
        (_coded(method={"values": ["GET"], "codes": "not base64!"}), "`method`: `codes` is not base64"),
        (_coded(method={"values": ["GET"]}), "`method` is not a list of 20 values nor a coded field"),
        (_coded(method="GET"), "`method` is not a list of 20 values nor a coded field"),
        ({**_coded(method={"values": ["GET"], "codes": _b64(np.zeros(20, "u1"))}), "v": 2},
         "is not a list of 20 values"),
        ({**_coded(), "other": []}, "`other` or `d1_other` is not an object"),
    ],
)
def test_a_coded_field_that_does_not_fit_is_refused_with_its_reason(value: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidColumns) as raised:
        records_of_batch(value)
    assert reason in str(raised.value)
    assert decode_log_batch(orjson.dumps(value)) is None  # the report skips it, no traceback


def test_the_schema_refuses_a_coded_field_in_a_version_2_batch() -> None:
    value = _coded(method={"values": ["GET"], "codes": _b64(np.zeros(20, "u1"))})
    ColumnarLogBatch.model_validate(value)
    with pytest.raises(ValidationError, match="coded fields are version 3"):
        ColumnarLogBatch.model_validate({**value, "v": 2})


def test_panes_too_far_apart_for_one_sort_key_are_grouped_as_near_ones() -> None:
    """Grouping sorts one integer key, endpoint × panes spanned + pane; when that would overflow (here 1 ms panes
    2**61 ms apart) the pane starts are ranked instead, and the panes are the same."""
    stamps = [0, 2**61, 7, 2**61, 0, 7]
    records = [{"service": "a", "endpoint": f"/{i % 3}", "event_time_ms": t, "status": 200 + i % 2, "outcome": "ok",
                "duration_ms": float(i), "cpu_ms": None, "d1": []} for i, t in enumerate(stamps)]
    store = PaneStore(pane_ms=1, retention_ms=1)
    store.add(records)
    closed = {(e.service, e.endpoint, e.start_ms): e.pane.counts_dict() for e in store.close_all()}
    expected: dict[tuple[str, str, int], list[int]] = {}
    for i, r in enumerate(records):
        expected.setdefault((r["service"], r["endpoint"], r["event_time_ms"]), []).append(i)
    assert closed.keys() == expected.keys()
    for key, indexes in expected.items():
        assert closed[key]["total"] == len(indexes)
        assert closed[key]["duration_sum_ms"] == sum(float(i) for i in indexes)
        assert closed[key]["status"] == dict(Counter(str(200 + i % 2) for i in indexes))
