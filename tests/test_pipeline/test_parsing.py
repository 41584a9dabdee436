"""LogParser: bytes of wrangler output in; records, dead letters, notices and counts out."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.parsing import LogParser, ParseOutput, ParseStats, dead_letter, parse_chunks
from schemas.deadletter import DeadLetter
from schemas.record import LogRecord
from tests.captures import sample_events

SAMPLE_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "wrangler-tail-sample.json"
SAMPLE = SAMPLE_PATH.read_bytes()
EVENTS = sample_events(SAMPLE_PATH)
T0 = 1_767_700_800_000
GIVE_UP = ('"Unable to reconnect to the tail for factory-api after 5 attempts. Please re-run `wrangler tail '
           'factory-api` to start a new session."')


def pretty(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, indent=4, ensure_ascii=False).encode() + b"\n"


def compact(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def parse(data: bytes, chunk: int | None = None, **kwargs: Any) -> tuple[ParseOutput, ParseStats]:
    parser = LogParser("capture.json", **kwargs)
    total = ParseOutput()
    size = chunk or max(len(data), 1)
    outputs = [parser.feed(data[start:start + size]) for start in range(0, len(data), size)] + [parser.finish()]
    for out in outputs:
        total.records += out.records
        total.dead_letters += out.dead_letters
        total.notices += out.notices
    for item in total.records:
        LogRecord.model_validate(item)
    orjson.dumps(total.records)
    for letter in total.dead_letters:
        DeadLetter.model_validate(letter)
    orjson.dumps(total.dead_letters)  # they go on the dead-letter topic as JSON
    return total, parser.stats


def test_sample_capture() -> None:
    out, stats = parse(SAMPLE)
    assert (stats.events, stats.records, stats.non_request, stats.noise, stats.rejected) == (12, 11, 1, 0, 0)
    assert stats.non_request_by_kind == Counter(scheduled=1)
    assert (stats.invalid_fields, stats.repaired_utf8) == (0, 0)
    assert out.dead_letters == [] and out.notices == []
    assert [r["event_time_ms"] for r in out.records][:3] == [T0 + 255, T0 + 1742, T0 + 3037]
    assert stats.summary_line() == ("events=12 records=11 noise=0 rejected=0 non_request=1 invalid_fields=0 "
                                    "repaired_utf8=0 non_request.scheduled=1")


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_sample_in_any_chunks_gives_the_same_output(chunk: int) -> None:
    whole, whole_stats = parse(SAMPLE)
    out, stats = parse(SAMPLE, chunk)
    assert out.records == whole.records
    assert stats == whole_stats


def huge_truncated_event() -> dict[str, Any]:
    """Event 11 of the sample, with the near-256 KB of logs a real capped request keeps before the warn entry."""
    event = json.loads(json.dumps(EVENTS[10]))
    rows = event["logs"][1]["message"][0]
    event["logs"][1:2] = [{"message": [f"{rows} (page {page})"], "level": "log", "timestamp": T0 + 9500 + page}
                          for page in range(45)]
    assert event["truncated"] is True and event["logs"][-1]["level"] == "warn"
    assert event["logs"][-1]["message"][0].startswith("Log size limit exceeded: More than 256KB")
    return event


@pytest.mark.parametrize("chunk", [None, 65_536, 4096])
def test_huge_truncated_event_still_yields_its_record(chunk: int | None) -> None:
    event = huge_truncated_event()
    data = pretty(EVENTS[0]) + pretty(event) + pretty(EVENTS[11])
    assert len(pretty(event)) > 240_000
    out, stats = parse(data, chunk)
    assert (stats.events, stats.records, stats.rejected) == (3, 3, 0)
    record = out.records[1]
    assert record["truncated"] is True
    assert (record["endpoint"], record["method"], record["status"]) == ("/api/factory/templates/import", "POST", 200)
    assert (record["duration_ms"], record["duration_source"]) == (2875.0, "wall")


def everything() -> bytes:
    null_event = json.loads(json.dumps(EVENTS[5]))
    null_event["event"] = None
    bad_fields = json.loads(json.dumps(EVENTS[0]))
    log = json.loads(bad_fields["logs"][0]["message"][0])
    log.update(status="abc", duration_ms=-4, timestamp="soon")
    bad_fields["logs"][0]["message"][0] = json.dumps(log)
    bare = {"timestamp": "2026-01-06T12:00:20Z", "level": "warn", "service": "factory-api", "tenant_id": "t",
            "path": "/capabilities/free", "status": 429, "duration_ms": 2}
    no_time = {k: v for k, v in EVENTS[6].items() if k != "eventTimestamp"}
    utf8 = pretty(EVENTS[5]).replace(b"health check ok - d1", b"health check ok \xff d1")
    return b"".join([
        b"Usage metrics tracking has changed since you last ran wrangler.\n",  # 1
        b"\n",  # 2
        pretty(EVENTS[0]),  # 3
        pretty(EVENTS[2])[:700],  # a cut object, its last line unfinished
        b"\n" + pretty(null_event),
        compact(bare) + b"\n" + compact({"hello": "world"}) + b"\n",
        pretty(bad_fields),
        pretty(no_time),
        utf8,
        pretty(EVENTS[1]),
        GIVE_UP.encode() + b"\n",
    ])


def test_everything_is_counted_by_kind() -> None:
    data = everything()
    out, stats = parse(data)
    assert stats.events == 8
    assert stats.records == 4  # EVENTS[0], the bare log, the bad-fields event, the repaired event
    assert [r["outcome"] for r in out.records] == ["ok", "log", "ok", "ok"]
    assert stats.noise_by_kind == Counter(text=1, blank=1, json_string=1) and stats.noise == 3
    assert stats.non_request_by_kind == Counter(null=1, scheduled=1) and stats.non_request == 2
    assert stats.rejected_by_kind == Counter(truncated_object=1, not_an_event=1, no_event_time=1)
    assert stats.rejected == 3
    assert (stats.invalid_fields, stats.repaired_utf8) == (3, 1)
    assert out.notices == [GIVE_UP]
    kinds = [letter["kind"] for letter in out.dead_letters]
    assert kinds == ["truncated_object", "not_an_event", "invalid_field", "no_event_time"]
    for letter in out.dead_letters:
        assert letter["source"] == "capture.json"
        assert letter["line"] == data.count(b"\n", 0, letter["offset"]) + 1
        assert data[letter["offset"]:letter["offset"] + 1] == b"{"
    cut, not_event, invalid, no_time = out.dead_letters
    assert cut["offset"] == data.index(pretty(EVENTS[2])[:700]) and cut["reason"].startswith("object cut off")
    assert not_event["excerpt"] == '{"hello":"world"}'
    assert invalid["reason"] == ("timestamp: not an ISO 8601 time: 'soon'; status: not an HTTP status code: 'abc'; "
                                 "duration_ms: not a non-negative number: '-4'")
    assert no_time["reason"] == "no FactoryLog timestamp and no eventTimestamp"
    bad = out.records[2]
    assert (bad["status"], bad["duration_source"], bad["event_time_ms"]) == (200, "wall", EVENTS[0]["eventTimestamp"])
    assert (out.records[1]["endpoint"], out.records[1]["status"]) == ("/capabilities/free", 429)
    assert out.records[3]["path"] == "/api/health"  # the event with a bad byte, repaired


@pytest.mark.parametrize("chunk", [1, 7, 100])
def test_everything_in_any_chunks(chunk: int) -> None:
    whole, whole_stats = parse(everything())
    out, stats = parse(everything(), chunk)
    assert (out.records, out.dead_letters, out.notices) == (whole.records, whole.dead_letters, whole.notices)
    assert stats == whole_stats


def test_oversized_objects_with_a_small_limit() -> None:
    data = SAMPLE + compact(EVENTS[1]) + b"\n"
    out, stats = parse(data, 7, max_object_bytes=2048)
    # only the cron event fits in 2 KB pretty-printed; it and its compact copy are scheduled, not records
    assert stats.rejected_by_kind == Counter(oversized_object=11)
    assert (stats.events, stats.records, stats.non_request) == (2, 0, 2)
    starts = [i for i in range(len(SAMPLE)) if SAMPLE.startswith(b"{\n", i) and (i == 0 or SAMPLE[i - 1] == 10)]
    big = starts[:1] + starts[2:]
    assert [letter["offset"] for letter in out.dead_letters] == big
    assert [letter["line"] for letter in out.dead_letters] == [SAMPLE.count(b"\n", 0, i) + 1 for i in big]
    assert all(letter["reason"] == "object larger than 2048 bytes" for letter in out.dead_letters)
    assert all(len(letter["excerpt"]) <= 512 for letter in out.dead_letters)


def test_event_null_is_a_non_request_kind() -> None:
    event = json.loads(json.dumps(EVENTS[6]))
    event["event"] = None
    out, stats = parse(pretty(event))
    assert (stats.events, stats.records, stats.non_request, stats.rejected) == (1, 0, 1, 0)
    assert stats.non_request_by_kind == Counter(null=1)
    assert out.dead_letters == []


def test_json_lines_of_bare_factory_logs() -> None:
    logs = [{"timestamp": f"2026-01-06T12:00:0{i}Z", "level": "INFO", "service": "factory-api",
             "endpoint": "/api/public/factory/templates/:id", "request_id": f"r{i}", "tenant_id": "tnt",
             "method": "GET", "path": f"/api/public/factory/templates/tpl_{i}00", "status": 200,
             "duration_ms": i} for i in range(5)]
    out, stats = parse(b"".join(compact(log) + b"\n" for log in logs), 3)
    assert (stats.events, stats.records) == (5, 5)
    assert [r["event_time_ms"] for r in out.records] == [T0 + 1000 * i for i in range(5)]
    assert {r["endpoint"] for r in out.records} == {"/api/public/factory/templates/:slug"}
    assert {r["outcome"] for r in out.records} == {"log"}


def test_stats_merge() -> None:
    _, first = parse(SAMPLE)
    _, second = parse(everything())
    first.merge(second)
    assert (first.events, first.records, first.noise, first.rejected, first.non_request) == (20, 15, 3, 3, 3)
    assert first.non_request_by_kind == Counter(scheduled=2, null=1)
    assert first.invalid_fields == 3 and first.repaired_utf8 == 1
    assert "rejected.no_event_time=1" in first.summary_line()


def test_parse_chunks_yields_one_output_per_chunk_and_a_final_one() -> None:
    cut = len(pretty(EVENTS[0])) + 10
    outputs = list(parse_chunks("stdin", [SAMPLE[:cut], SAMPLE[cut:], b""]))
    assert len(outputs) == 4
    assert [len(out.records) for out in outputs] == [1, 10, 0, 0]


def test_dead_letter_shape() -> None:
    letter = dead_letter("stdin", 3, 120, "malformed_json", "Expecting value", "{x")
    assert DeadLetter.model_validate(letter).model_dump() == letter


def messy_capture(seed: int) -> bytes:
    """Sample events in mixed layouts with noise, cut and broken objects, debris and an invalid field between."""
    rng = __import__("random").Random(seed)
    parts: list[bytes] = []
    bad_status = json.loads(json.dumps(EVENTS[0]))
    bad_status["logs"][0]["message"][0] = bad_status["logs"][0]["message"][0].replace('"status":200',
                                                                                       '"status":"200"')
    for i in range(60):
        event = EVENTS[i % len(EVENTS)]
        roll = rng.random()
        if roll < 0.55:
            parts.append(pretty(event))
        elif roll < 0.62:
            parts.append(compact(event) + b"\n")
        elif roll < 0.67:
            parts.append(pretty(event)[: rng.randrange(5, 200)])  # cut off: the next object starts inside it
            parts.append(b"\n")
        elif roll < 0.72:
            parts.append(b"    \"orphan\": 1,\n}\n")  # debris: an object's end without its start
        elif roll < 0.77:
            parts.append(GIVE_UP.encode() + b"\n\n")
        elif roll < 0.82:
            parts.append(b"{\n    \"a\": [1,\n}\n")  # a pretty object that does not parse
        elif roll < 0.87:
            parts.append(pretty(bad_status))
        else:
            parts.append(compact(event) + b"junk" + compact(event) + b"\n")
    return b"".join(parts)


@pytest.mark.parametrize("seed", range(3))
def test_input_cut_after_a_closing_line_parses_in_two_parts_as_in_one(seed: int) -> None:
    """`object_start_after` cut points: the first part's output then the second's (read with the cut's offset
    and line) is the whole input's output — records, dead letters with lines and offsets, notices, counts."""
    from pipeline.framing import object_start_after

    data = messy_capture(seed)
    whole, whole_stats = parse(data, 4096)
    cuts = []
    at = object_start_after(data, 1)
    while at >= 0:
        cuts.append(at)
        at = object_start_after(data, at + 1)
    assert len(cuts) > 10
    for cut in cuts:
        first = LogParser("capture.json")
        second = LogParser("capture.json", start_offset=cut, start_line=data.count(b"\n", 0, cut) + 1)
        outs = [first.feed(data[:cut]), first.finish(), second.feed(data[cut:]), second.finish()]
        assert [r for out in outs for r in out.records] == whole.records
        assert [d for out in outs for d in out.dead_letters] == whole.dead_letters
        assert [n for out in outs for n in out.notices] == whole.notices
        first.stats.merge(second.stats)
        assert first.stats == whole_stats
    assert whole.dead_letters and whole.notices and whole_stats.invalid_fields


def test_pushed_objects_give_what_the_same_events_printed_give() -> None:
    """`feed_objects` (a Tail Worker's array) and `feed` (wrangler's output) of the same events: the same records
    and counts, on every event shape wrangler prints and on synthetic traffic; an item that is not an object costs
    only itself."""
    from pipeline.framing import TailFramer
    from pipeline.pieces import Frame
    from pipeline.synthetic import DEMO_START_MS, generate_events, render_capture

    shapes = (Path(__file__).resolve().parents[1] / "fixtures" / "wrangler-shapes" / "events.json").read_bytes()
    objects = [piece.obj for piece in TailFramer().feed(shapes) + TailFramer().finish() if type(piece) is Frame]
    traffic = [event for _, event in zip(range(500), generate_events(3, DEMO_START_MS, 2, 600), strict=False)]
    assert len(objects) > 20
    for events in (objects, traffic):
        printed = LogParser("printed")
        capture = b"".join(render_capture(events))
        expected = printed.feed(capture).records + printed.finish().records
        pushed = LogParser("pushed")
        assert pushed.feed_objects(events).records == expected
        assert pushed.stats.summary_line() == printed.stats.summary_line()
        raw = LogParser("raw")
        assert raw.feed_raw_objects([orjson.dumps(event) for event in events]).records == expected
        assert raw.stats.summary_line() == printed.stats.summary_line()
    mixed = LogParser("mixed")
    out = mixed.feed_objects([*traffic[:5], 7, {"hello": 1}, *traffic[5:9]])
    assert [r["request_id"] for r in out.records] == [r["request_id"] for r in LogParser("x").feed_objects(
        traffic[:9]).records]
    assert [(letter["kind"], letter["offset"]) for letter in out.dead_letters] == [
        ("not_an_event", 5), ("not_an_event", 6)]
