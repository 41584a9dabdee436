"""Hostile input for the reader: `LogParser` over arbitrary and mutated bytes never raises, counts every piece
it rejects with a reason, never loses a valid object that follows junk, and does not depend on chunking.

Cases per property: `TAILWATCH_FUZZ_CASES` (default 300, so the file runs in well under a minute). The long run:
`TAILWATCH_FUZZ_CASES=15000 .venv/bin/python -m pytest tests/reliability/test_reader_fuzz.py` (7 properties).
"""

from __future__ import annotations

import itertools
import os
import tracemalloc
from functools import cache
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.parsing import SLICE_BYTES, LogParser, ParseOutput
from pipeline.synthetic import DEMO_START_MS, generate_events, is_request_event, render_capture

CASES = int(os.environ.get("TAILWATCH_FUZZ_CASES", "300"))
FUZZ = settings(max_examples=CASES, deadline=None, derandomize=False, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SAMPLE = Path(__file__).parents[1] / "fixtures" / "wrangler-tail-sample.json"
LAYOUTS = ("pretty4", "pretty2", "compact", "jsonl")


@cache
def synthetic_events() -> tuple[dict, ...]:
    """Request events only: each one makes exactly one record."""
    events = generate_events(seed=7, start_ms=DEMO_START_MS, minutes=1, requests_per_minute=12)
    return tuple(event for event in events if is_request_event(event))


@cache
def captures() -> tuple[bytes, ...]:
    rendered = tuple(b"".join(render_capture(synthetic_events(), layout)) for layout in LAYOUTS)
    return (SAMPLE.read_bytes(), *rendered)


def parse(data: bytes, chunks: list[int] | None = None,
          max_object_bytes: int | None = None) -> tuple[ParseOutput, LogParser]:
    parser = LogParser("fuzz") if max_object_bytes is None else LogParser("fuzz", max_object_bytes=max_object_bytes)
    total = ParseOutput()
    pieces = [data] if not chunks else list(_cut(data, chunks))
    for piece in pieces:
        _add(total, parser.feed(piece))
    _add(total, parser.finish())
    return total, parser


def _cut(data: bytes, sizes: list[int]) -> list[bytes]:
    out, at = [], 0
    for size in itertools.cycle(sizes):
        if at >= len(data):
            return out
        out.append(data[at:at + size])
        at += size
    return out


def _add(total: ParseOutput, part: ParseOutput) -> None:
    total.records.extend(part.records)
    total.dead_letters.extend(part.dead_letters)
    total.notices.extend(part.notices)


def check_accounting(data: bytes, out: ParseOutput, parser: LogParser) -> None:
    """The counters add up: every object decoded is a record, a non-request event or a rejection; every
    rejection is a dead letter with a kind and a reason; breakdowns sum to their totals; non-blank input costs
    at least one counted piece."""
    stats = parser.stats
    assert stats.records == len(out.records)
    assert sum(stats.noise_by_kind.values()) == stats.noise
    assert sum(stats.rejected_by_kind.values()) == stats.rejected
    assert sum(stats.non_request_by_kind.values()) == stats.non_request
    rejected = [d for d in out.dead_letters if d["kind"] != "invalid_field"]
    assert len(rejected) == stats.rejected
    for letter in out.dead_letters:
        assert letter["kind"] and letter["reason"], letter
        assert letter["offset"] is None or 0 <= letter["offset"] <= len(data)
    framing_rejects = sum(n for kind, n in stats.rejected_by_kind.items()
                          if kind in ("truncated_object", "oversized_object", "malformed_json"))
    assert stats.events == stats.records + stats.non_request + (stats.rejected - framing_rejects)
    assert stats.noise_by_kind["json_string"] == len(out.notices)
    if data.strip():
        assert stats.events + stats.noise + stats.rejected >= 1, "non-blank input left uncounted"


def _same(a: tuple[ParseOutput, LogParser], b: tuple[ParseOutput, LogParser]) -> None:
    assert a[0].records == b[0].records
    assert a[0].dead_letters == b[0].dead_letters
    assert a[0].notices == b[0].notices
    assert a[1].stats == b[1].stats


@st.composite
def mutated_capture(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(captures())))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(("truncate", "flip", "insert", "delete", "huge_line", "newline")))
        at = draw(st.integers(0, len(data)))
        if op == "truncate":
            del data[at:]
        elif op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 200))]
        elif op == "huge_line":
            data[at:at] = draw(st.sampled_from((b"x", b"{", b"\xff", b'"', b"[ "))) * draw(st.integers(1, 200_000))
        elif op == "newline":
            data[at:at] = b"\n"
    return bytes(data)


CHUNKS = st.lists(st.integers(1, 4096), min_size=1, max_size=8)


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise_and_are_counted(data: bytes) -> None:
    out, parser = parse(data)
    check_accounting(data, out, parser)


@FUZZ
@given(st.lists(st.sampled_from([b"{", b"}", b"\n", b"    ", b'"a"', b":", b",", b"[", b"]", b"1", b"x", b"\xc3",
                                  b'{"a":1}', b"{\n", b"\n}\n", b'"message": [', b"\\"]), max_size=80))
def test_json_shaped_tokens_never_raise(tokens: list[bytes]) -> None:
    data = b"".join(tokens)
    out, parser = parse(data)
    check_accounting(data, out, parser)


@FUZZ
@given(mutated_capture())
def test_mutated_captures_never_raise_and_are_counted(data: bytes) -> None:
    out, parser = parse(data)
    check_accounting(data, out, parser)


@FUZZ
@given(mutated_capture(), CHUNKS)
def test_output_does_not_depend_on_chunking(data: bytes, sizes: list[int]) -> None:
    _same(parse(data), parse(data, sizes))


@FUZZ
@given(st.binary(max_size=2048), CHUNKS)
def test_arbitrary_bytes_do_not_depend_on_chunking(data: bytes, sizes: list[int]) -> None:
    _same(parse(data), parse(data, sizes))


@FUZZ
@given(st.binary(max_size=512).map(lambda b: b.replace(b"\n", b"")), st.sampled_from(LAYOUTS),
       st.integers(0, 11), CHUNKS)
def test_valid_object_after_junk_is_never_lost(junk: bytes, layout: str, index: int, sizes: list[int]) -> None:
    """Junk on its own line(s), then a whole valid event in any layout: its record comes out."""
    event = synthetic_events()[index % len(synthetic_events())]
    (expected,) = parse(b"".join(render_capture([event], layout)))[0].records
    rendered = b"".join(render_capture([event], layout))
    data = junk + b"\n" + rendered + (b"\n" if layout == "compact" else b"")
    out, parser = parse(data, sizes)
    check_accounting(data, out, parser)
    assert expected in out.records, (junk, layout)


@FUZZ
@given(st.lists(st.tuples(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")), st.integers(0, 11)),
                min_size=1, max_size=6), st.sampled_from(("pretty4", "pretty2", "jsonl")))
def test_every_valid_object_between_junk_lines_survives(parts: list[tuple[bytes, int]], layout: str) -> None:
    events = synthetic_events()
    data = b"".join(junk + b"\n" + b"".join(render_capture([events[i % len(events)]], layout)) for junk, i in parts)
    out, parser = parse(data)
    check_accounting(data, out, parser)
    for _, i in parts:
        (expected,) = parse(b"".join(render_capture([events[i % len(events)]], layout)))[0].records
        assert expected in out.records


MAX_OBJECT = 1 << 20
JUNK_MB = 50


def _peak_while(chunks: list[bytes], then: bytes) -> tuple[int, ParseOutput, LogParser]:
    parser = LogParser("huge", max_object_bytes=MAX_OBJECT)
    total = ParseOutput()
    tracemalloc.start()
    try:
        for chunk in chunks:
            _add(total, parser.feed(chunk))
        _add(total, parser.feed(then))
        _add(total, parser.finish())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, total, parser


# The bound: the framer holds at most one object (max_object_bytes) plus one chunk; allow 3x for the
# decode/copy of that window and Python's object overheads. 50 MB of input must not come near it.
PEAK_BOUND = 3 * (MAX_OBJECT + SLICE_BYTES) + (1 << 20)


def test_50mb_line_without_newline_is_bounded_in_memory() -> None:
    chunk = b"x" * SLICE_BYTES
    event = synthetic_events()[0]
    tail = b"\n" + b"".join(render_capture([event], "pretty4"))
    peak, out, parser = _peak_while([chunk] * (JUNK_MB * 16), tail)
    assert peak < PEAK_BOUND, f"peak {peak} bytes for {JUNK_MB} MB of junk"
    assert parser.stats.noise + parser.stats.rejected >= 1
    assert len(out.records) == 1, "the object after the huge line was lost"


def test_50mb_object_is_bounded_in_memory_and_rejected() -> None:
    head = b"{\n"
    chunk = b'    "k": "' + b"y" * (SLICE_BYTES - 20) + b'",\n'
    event = synthetic_events()[1]
    tail = b"}\n" + b"".join(render_capture([event], "pretty4"))
    peak, out, parser = _peak_while([head] + [chunk] * (JUNK_MB * 16), tail)
    assert peak < PEAK_BOUND, f"peak {peak} bytes for a {JUNK_MB} MB object"
    assert parser.stats.rejected_by_kind["oversized_object"] == 1
    assert any(d["kind"] == "oversized_object" and d["reason"] for d in out.dead_letters)
    assert len(out.records) == 1, "the object after the oversized one was lost"


def test_50mb_compact_object_on_one_line_is_bounded() -> None:
    chunk = b'{"a":"' + b"z" * (SLICE_BYTES - 6)
    event = synthetic_events()[2]
    tail = b'"}\n' + orjson.dumps(event) + b"\n"
    peak, out, parser = _peak_while([chunk] * (JUNK_MB * 16), tail)
    assert peak < PEAK_BOUND, f"peak {peak} bytes for a {JUNK_MB} MB compact line"
    assert parser.stats.rejected >= 1
    assert len(out.records) == 1


@settings(FUZZ, max_examples=min(CASES, 30))
@given(st.integers(900, 200_000), st.sampled_from((b"[", b"[ ", b'{"a":')), CHUNKS)
def test_deeply_nested_compact_json_is_rejected_not_raised(depth: int, opener: bytes, sizes: list[int]) -> None:
    """Found by the long run: a compact line nested deeper than the JSON decoder recursed out of the reader."""
    event = synthetic_events()[3]
    data = b'{"a":' + opener * depth + b"\n" + orjson.dumps(event) + b"\n"
    out, parser = parse(data, sizes)
    check_accounting(data, out, parser)
    assert parser.stats.rejected_by_kind["malformed_json"] + parser.stats.rejected_by_kind["truncated_object"] >= 1
    assert len(out.records) == 1
    _same((out, parser), parse(data))
