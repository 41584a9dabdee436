"""Hostile bytes into the reader: never an exception, every piece counted with a reason, memory bounded."""

from __future__ import annotations

import tracemalloc
from itertools import islice

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.parsing import LogParser, ParseStats
from pipeline.synthetic import demo_events, render_capture
from tests.reliability.conftest import FUZZ_CASES

SEED_CAPTURE = b"".join(render_capture(islice(demo_events(seed=3), 40)))
FUZZ = settings(max_examples=FUZZ_CASES, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def parse_all(data: bytes, cuts: list[int], max_object_bytes: int | None = None) -> tuple[ParseStats, list[dict]]:
    parser = LogParser("fuzz") if max_object_bytes is None else LogParser("fuzz", max_object_bytes=max_object_bytes)
    dead: list[dict] = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        dead.extend(parser.feed(data[start:cut]).dead_letters)
        start = cut
    dead.extend(parser.finish().dead_letters)
    return parser.stats, dead


def assert_accounted(stats: ParseStats, dead: list[dict]) -> None:
    """Each decoded object is a record, a non-request or a reject; each reject and noise has a kind and reason."""
    assert sum(stats.noise_by_kind.values()) == stats.noise
    assert sum(stats.rejected_by_kind.values()) == stats.rejected
    assert sum(stats.non_request_by_kind.values()) == stats.non_request
    rejects = [d for d in dead if d["kind"] != "invalid_field"]
    assert len(rejects) == stats.rejected
    assert all(d["reason"] and d["kind"] for d in dead)
    framed_rejects = sum(1 for d in rejects if d["kind"] not in ("malformed_json", "truncated_object",
                                                                "oversized_object"))
    assert stats.events == stats.records + stats.non_request + framed_rejects


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray(data)
    for raw_pos, op, blob in edits:
        pos = raw_pos % (len(out) + 1)
        if op == 0:
            out[pos:pos] = blob
        elif op == 1:
            del out[pos:pos + len(blob) + 1]
        else:
            out[pos:pos + len(blob)] = blob
    return bytes(out)


@FUZZ
@given(st.binary(max_size=4096), st.lists(st.integers(0, 1 << 16), max_size=8))
def test_arbitrary_bytes_are_accounted(data: bytes, cuts: list[int]) -> None:
    assert_accounted(*parse_all(data, cuts))


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 2), st.binary(min_size=1, max_size=16)),
                min_size=1, max_size=12),
       st.lists(st.integers(0, 1 << 20), max_size=6))
def test_mutated_real_captures_are_accounted(edits: list[tuple[int, int, bytes]], cuts: list[int]) -> None:
    assert_accounted(*parse_all(mutate(SEED_CAPTURE, edits), cuts))


@FUZZ
@given(st.integers(0, len(SEED_CAPTURE)))
def test_truncated_captures_are_accounted(length: int) -> None:
    stats, dead = parse_all(SEED_CAPTURE[:length], [])
    assert_accounted(stats, dead)
    full, _ = parse_all(SEED_CAPTURE, [])
    assert stats.records <= full.records


def test_undisturbed_capture_has_records_and_no_rejects() -> None:
    stats, dead = parse_all(SEED_CAPTURE, [7, 1000, 5000])
    assert stats.records > 0 and stats.rejected == 0 and not [d for d in dead if d["kind"] != "invalid_field"]


def test_huge_line_and_object_are_bounded_in_memory() -> None:
    """A 64 MiB object and a 64 MiB noise line cost at most a small multiple of the object limit."""
    limit = 1 << 20
    blob = b'{"logs": ["' + b"x" * (64 << 20) + b'"]}\n' + b"y" * (64 << 20) + b"\n"
    tracemalloc.start()
    try:
        parser = LogParser("huge", max_object_bytes=limit)
        dead = []
        for start in range(0, len(blob), 1 << 20):
            dead.extend(parser.feed(blob[start:start + (1 << 20)]).dead_letters)
        dead.extend(parser.finish().dead_letters)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_accounted(parser.stats, dead)
    assert parser.stats.rejected_by_kind["oversized_object"] >= 1
    assert peak < 16 * limit, f"peak {peak} bytes for a {limit}-byte object limit"
