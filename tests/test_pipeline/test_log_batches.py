"""The typed logs-topic decoder: the same pane fields as the whole batch decoded with orjson, the same panes, and a
clear reason for every message that is not a log batch."""

from __future__ import annotations

from typing import Any, get_type_hints

import msgspec
import orjson
import pytest

from pipeline.batching import BatchBuilder
from pipeline.log_batches import InvalidLogBatch, decode_pane_batch, invalid_batch_letter
from pipeline.metrics import snapshot
from pipeline.pane_records import PaneD1Query, PaneRecord
from pipeline.pane_store import PaneStore
from pipeline.parsing import LogParser
from pipeline.synthetic import DEMO_START_MS, TrafficMix, demo_incidents, generate_events, render_capture
from schemas.deadletter import DeadLetter

PANE_FIELDS = set(PaneRecord.__struct_fields__)
D1_FIELDS = set(get_type_hints(PaneD1Query))


def pane_fields(record: dict[str, Any]) -> dict[str, Any]:
    """What the panes read of a whole record: its pane fields, and those of its D1 queries."""
    out = {key: value for key, value in record.items() if key in PANE_FIELDS}
    out["d1"] = [{key: value for key, value in query.items() if key in D1_FIELDS} for query in record["d1"]]
    return out


def generated_batches() -> list[bytes]:
    """Log batches as ingest publishes them, from 20 minutes of generated traffic with incidents (5xx, timeouts,
    D1 connection failures, canceled requests) and disorder."""
    incidents = demo_incidents(DEMO_START_MS - 62 * 60_000)  # the demo's minutes 62-82: down, D1 failures
    events = generate_events(5, DEMO_START_MS, 20, 300, disorder_ms=2_000, mix=TrafficMix(), incidents=incidents)
    parser = LogParser("generated")
    records: list[dict[str, Any]] = []
    for chunk in render_capture(events):
        records += parser.feed(chunk).records
    records += parser.finish().records
    builder = BatchBuilder("p1", "generated", 4, max_records=200)
    batches = builder.add(records) + builder.flush(final=True)
    return [orjson.dumps(batch) for batch in batches]


@pytest.fixture(scope="module")
def batches() -> list[bytes]:
    return generated_batches()


def test_records_keep_the_pane_fields_with_their_json_types(batches: list[bytes]) -> None:
    records = 0
    for value in batches:
        whole = orjson.loads(value)
        typed = decode_pane_batch(value)
        assert (typed.producer, typed.watermark_ms, typed.final) == (whole["producer"], whole["watermark_ms"],
                                                                     whole["final"])
        for mine, theirs in zip(typed.records, whole["records"], strict=True):
            expected = pane_fields(theirs)
            fields = {**msgspec.structs.asdict(mine), "d1": list(mine.d1)}
            assert fields == expected
            # 1 stays an int and 1.0 a float, as orjson gives them: snapshots print them alike
            assert {key: type(value) for key, value in fields.items()} == {
                key: type(value) for key, value in expected.items()}
            records += 1
    assert records > 5_000


def test_the_panes_equal_those_of_the_whole_batches(batches: list[bytes]) -> None:
    typed, whole = PaneStore(), PaneStore()
    for value in batches:
        typed.add(decode_pane_batch(value).records)
        whole.add(orjson.loads(value)["records"])
    closed_typed = typed.close_all()
    closed_whole = whole.close_all()
    assert any(event.pane.d1_queries for event in closed_typed)
    assert any(event.pane.d1_connection_failures for event in closed_typed)
    assert [orjson.dumps(snapshot(e)) for e in closed_typed] == [orjson.dumps(snapshot(e)) for e in closed_whole]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty message (a tombstone)"),
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b"[]", "not a LogBatch: Expected `object`, got `array`"),
        (b'{"producer": "p", "records": []}', "not a LogBatch: Object missing required field `watermark_ms`"),
        (b'{"v": 4, "producer": "p", "watermark_ms": 1, "records": []}', "`$.v`"),
        (b'{"v": 2, "producer": "p", "watermark_ms": 1, "records": []}', "version 2 without `columns`"),
        (b'{"v": 3, "producer": "p", "watermark_ms": 1, "records": []}', "version 3 without `columns`"),
        (b'{"v": 1, "producer": "p", "watermark_ms": 1}', "missing required field `records`"),
        (b'{"producer": "p", "watermark_ms": "1", "records": []}', "`$.watermark_ms`"),
        (b'{"producer": "p", "watermark_ms": 1, "records": [{"service": "s"}]}', "`$.records[0]`"),
        (b'{"producer": "p", "watermark_ms": 1, "records": [{"service": "s", "endpoint": "/", "event_time_ms": 1,'
         b' "status": true, "outcome": "ok", "duration_ms": 1, "cpu_ms": 1, "d1": []}]}', "`$.records[0].status`"),
        (b'{"producer": "p", "watermark_ms": 1, "records": [{"service": "s", "endpoint": "/", "event_time_ms": 1,'
         b' "status": 200, "outcome": "ok", "duration_ms": 1, "cpu_ms": 1, "d1": [{"query_type": "drop"}]}]}',
         "`$.records[0].d1[0].query_type`"),
    ],
)
def test_a_message_that_is_not_a_log_batch_says_why(value: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidLogBatch) as raised:
        decode_pane_batch(value)
    assert reason in str(raised.value)


def test_the_dead_letter_of_an_invalid_message_is_a_dead_letter() -> None:
    value = b"\xff\xfe" + b"x" * 5_000
    letter = invalid_batch_letter("tailwatch.logs", 3, 41, value, "not JSON: ...")
    DeadLetter.model_validate(letter)
    assert (letter["source"], letter["offset"], letter["kind"]) == ("kafka:tailwatch.logs/3", 41, "invalid_log_batch")
    assert len(letter["excerpt"]) <= 512
