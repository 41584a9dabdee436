"""Every event shape wrangler prints (tests/fixtures/wrangler-shapes/, built from wrangler's own source and tests)
gives the record or the non-request count it must — the same on the fast path and the general one — in any text
encoding a capture is saved in."""

from __future__ import annotations

import codecs
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.batching import BatchBuilder
from pipeline.encoding import InputDecoder
from pipeline.extract import Extractor
from pipeline.fast_record import request_record
from pipeline.framing import Frame, TailFramer
from pipeline.log_batches import decode_pane_batch
from pipeline.parsing import LogParser, ParseStats
from schemas.record import LogRecord
from schemas.tail_event import TailEvent

SHAPES = Path(__file__).resolve().parents[1] / "fixtures" / "wrangler-shapes" / "events.json"

# Per event of events.json, in order: the record fields it must give, or the non-request kind it is counted as.
EXPECTED: list[dict[str, Any] | str] = [
    {"endpoint": "/api/items/:id", "status": 200, "outcome": "ok", "duration_ms": 8.0, "duration_source": "log"},
    {"endpoint": "/api/items", "status": None, "outcome": "canceled", "duration_ms": 10.0, "duration_source": "wall"},
    {"endpoint": "/api/boom", "status": 500, "outcome": "exception", "error_code": "TypeError",
     "error_message": "Cannot read properties of undefined (reading 'id')"},
    {"endpoint": "/api/boom", "outcome": "exception", "error_code": "Error",
     "error_message": '{"code":1101,"detail":"worker threw"}'},
    {"endpoint": "/api/slow", "outcome": "exceededCpu", "wall_ms": 12.75, "cpu_ms": 0.5, "duration_ms": 12.75},
    {"endpoint": "/api/big", "outcome": "exceededMemory", "wall_ms": 10, "cpu_ms": 2},
    {"endpoint": "/api/stream", "status": 200, "outcome": "responseStreamDisconnected"},
    {"endpoint": "/api/items/:id", "truncated": True, "request_id": "req-api-items-7"},
    {"endpoint": "/ws", "status": 101, "request_id": "7a1c0f3e5b2d4c72", "entrypoint": None,
     "execution_model": "stateless"},
    {"endpoint": "do:ChatRoom:/ws", "status": 101, "request_id": "7a1c0f3e5b2d4c72", "entrypoint": "ChatRoom",
     "execution_model": "durableObject"},
    "rpc",
    "scheduled",
    {"endpoint": "scheduled:*/5 * * * *", "path": "/cron/cleanup", "duration_ms": 120.0},
    "alarm",
    "email",
    "tail",
    "queue",
    "websocket",
    "websocket",
    "overload",
    "overload-stop",
    "null",
    {"endpoint": "AdminApi:/admin/stats", "entrypoint": "AdminApi", "execution_model": "stateless"},
    {"endpoint": "/api/items/:id", "request_id": "req-api-items-9", "duration_ms": 5.0},
]


def shape_frames() -> list[Frame]:
    framer = TailFramer()
    pieces = framer.feed(SHAPES.read_bytes()) + framer.finish()
    assert all(type(piece) is Frame for piece in pieces)
    return pieces  # type: ignore[return-value]


def parse(data: bytes, chunk: int | None = None) -> tuple[list[dict[str, Any]], ParseStats]:
    parser = LogParser("shapes")
    records: list[dict[str, Any]] = []
    step = chunk or max(len(data), 1)
    for start in range(0, len(data), step):
        records += parser.feed(data[start:start + step]).records
    records += parser.finish().records
    return records, parser.stats


def test_every_shape_gives_its_record_or_its_non_request_kind() -> None:
    frames = shape_frames()
    assert len(frames) == len(EXPECTED)
    extractor = Extractor()
    for index, (frame, expected) in enumerate(zip(frames, EXPECTED, strict=True)):
        TailEvent.model_validate(frame.obj)  # the documented raw-event schema accepts every shape
        result = extractor.extract(frame.obj)
        assert result.reject_kind is None and result.problems == [], index
        if isinstance(expected, str):
            assert (result.record, result.non_request) == (None, expected), index
            continue
        record = result.record
        assert record is not None, index
        assert {key: record[key] for key in expected} == expected, index
        LogRecord.model_validate(record)
        fast = request_record(extractor.routes, frame.obj)
        if fast is not None:  # the fast path, when it takes an event, gives exactly the general record
            assert list(fast.items()) == list(record.items()), index


def test_the_whole_file_counts_each_kind_and_repairs_the_cut_emoji() -> None:
    records, stats = parse(SHAPES.read_bytes())
    kinds = Counter(kind for kind in EXPECTED if isinstance(kind, str))
    assert (stats.events, stats.records, stats.non_request, stats.rejected, stats.noise) == (
        24, 24 - sum(kinds.values()), sum(kinds.values()), 0, 0)
    assert stats.non_request_by_kind == kinds
    assert stats.repaired_utf8 == 1  # one event, two lone surrogates: the log string and the FactoryLog's
    assert stats.warnings == [] and not stats.incomplete
    last = records[-1]
    assert last["request_id"] == "req-api-items-9"  # the FactoryLog with `bot \ud83d` was read, not dropped


def test_a_durable_object_upgrade_is_not_a_second_request_of_the_workers_route() -> None:
    records, _ = parse(SHAPES.read_bytes())
    by_endpoint = Counter(record["endpoint"] for record in records if record["request_id"] == "7a1c0f3e5b2d4c72")
    assert by_endpoint == {"/ws": 1, "do:ChatRoom:/ws": 1}


def test_no_non_request_event_becomes_a_request_of_an_http_route() -> None:
    records, _ = parse(SHAPES.read_bytes())
    assert "/cron/cleanup" not in {record["endpoint"] for record in records}


def test_records_of_every_shape_survive_the_logs_topic_with_their_json_types() -> None:
    records, _ = parse(SHAPES.read_bytes())
    builder = BatchBuilder("p1", "shapes", 2, max_records=100)
    batches = builder.add(records) + builder.flush(final=True)
    decoded = [record for batch in batches for record in decode_pane_batch(orjson.dumps(batch)).records]
    slow = next(record for record in decoded if record.endpoint == "/api/slow")
    assert (slow.duration_ms, slow.cpu_ms) == (12.75, 0.5)
    assert sorted(record.endpoint for record in decoded) == sorted(record["endpoint"] for record in records)


def encoded(text: str, encoding: str, bom: bytes = b"", crlf: bool = False) -> bytes:
    if crlf:  # Windows PowerShell's `>` writes CRLF line ends as well
        text = text.replace("\n", "\r\n")
    return bom + text.encode(encoding, errors="surrogatepass")


ENCODINGS = {
    "utf-16le-bom-crlf": lambda text: encoded(text, "utf-16-le", codecs.BOM_UTF16_LE, crlf=True),
    "utf-16le": lambda text: encoded(text, "utf-16-le"),
    "utf-16be-bom": lambda text: encoded(text, "utf-16-be", codecs.BOM_UTF16_BE),
    "utf-16be": lambda text: encoded(text, "utf-16-be"),
    "utf-8-bom": lambda text: encoded(text, "utf-8", codecs.BOM_UTF8),
    "utf-32le-bom": lambda text: encoded(text, "utf-32-le", codecs.BOM_UTF32_LE),
    "utf-32be": lambda text: encoded(text, "utf-32-be"),
}


@pytest.mark.parametrize("name", sorted(ENCODINGS))
@pytest.mark.parametrize("chunk", [None, 1, 3, 4093])
def test_captures_saved_in_another_encoding_give_the_same_records(name: str, chunk: int | None) -> None:
    text = SHAPES.read_text(encoding="utf-8")
    want, want_stats = parse(text.encode("utf-8"))
    got, stats = parse(ENCODINGS[name](text), chunk)
    assert got == want
    assert (stats.events, stats.records, stats.non_request, stats.rejected, stats.repaired_utf8) == (
        want_stats.events, want_stats.records, want_stats.non_request, 0, 1)


def test_plain_utf8_is_decided_once_and_passed_through() -> None:
    decoder = InputDecoder()
    assert decoder.feed(b"{\n") == b""  # fewer than four bytes: not decided yet
    assert decoder.feed(b'  "a": 1\n}\n') == b'{\n  "a": 1\n}\n'
    assert (decoder.settled, decoder.encoding, decoder.description) == (True, "utf-8", None)


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"", "an empty input"),
        (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, "binary data"),
        (b"Usage metrics tracking has changed since you last ran wrangler.\nhello\n", "text with no JSON object"),
        ("caf\u00e9 cr\u00e8me {\n".encode("latin-1") * 3, "text that is not UTF-8"),
        (b'{"wallTime": 3, "outcome": "ok", oops}\n', "JSON with no complete tail event"),
        (encoded("Hello from PowerShell\n", "utf-16-le", codecs.BOM_UTF16_LE), "(read as UTF-16LE)"),
    ],
)
def test_an_input_with_no_event_is_counted_with_what_was_found(data: bytes, found: str) -> None:
    records, stats = parse(data)
    assert records == [] and stats.events == 0
    assert stats.inputs_without_events == 1 and stats.incomplete
    assert len(stats.warnings) == 1
    assert stats.warnings[0].startswith("shapes: no wrangler tail events; found ") and found in stats.warnings[0]
    assert "inputs_without_events=1" in stats.summary_line()


def test_damage_keeps_the_records_before_it_and_is_dead_lettered() -> None:
    parser = LogParser("capture.json.gz")
    data = SHAPES.read_bytes()
    before = parser.feed(data[: len(data) // 2]).records
    damage = parser.input_damaged(1234, "the gzip data ends early (the file is truncated)")
    after = parser.finish()
    assert 0 < len(before) < 13 and after.records == []  # the cut object is rejected, the ones before it stand
    assert parser.stats.rejected_by_kind == {"truncated_object": 1}
    assert parser.stats.damaged_inputs == 1 and parser.stats.inputs_without_events == 0
    [letter] = damage.dead_letters
    assert (letter["kind"], letter["offset"], letter["line"]) == ("damaged_input", 1234, None)
    assert parser.stats.warnings == [
        "capture.json.gz: input damaged at byte 1234: the gzip data ends early (the file is truncated); the "
        f"{len(before)} records before it were kept, the rest of the input is lost"]


def test_warnings_are_bounded_when_stats_merge() -> None:
    total = ParseStats()
    for index in range(250):
        _, stats = parse(b"")
        stats.warnings = [f"input {index}"]
        total.merge(stats)
    assert total.inputs_without_events == 250 and len(total.warnings) == 100
