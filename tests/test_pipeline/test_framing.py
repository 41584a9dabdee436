"""TailFramer: every layout wrangler (or a user's tooling) produces, noise, cut and oversized objects, and the
guarantee that chunk sizes change nothing."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.framing import DEFAULT_MAX_OBJECT_BYTES, EXCERPT_BYTES, Broken, Frame, Noise, Piece, TailFramer
from pipeline.pieces import decode_object
from tests.captures import sample_events

SAMPLE_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "wrangler-tail-sample.json"
SAMPLE = SAMPLE_PATH.read_bytes()
EVENTS = sample_events(SAMPLE_PATH)
GIVE_UP = b'"Unable to reconnect to the tail for factory-api after 5 attempts. Please re-run `wrangler tail factory-api` to start a new session."'  # noqa: E501
USAGE = "Usage metrics tracking has changed since you last ran wrangler. ⛅️".encode()
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pretty(obj: dict[str, Any], indent: int = 4) -> bytes:
    """Exactly what `console.log(JSON.stringify(obj, null, indent))` prints."""
    return json.dumps(obj, indent=indent, ensure_ascii=False).encode() + b"\n"


def compact(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def frame_all(data: bytes, chunk: int | None = None, max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES) -> list[Piece]:
    """All pieces of `data` fed in chunks of `chunk` bytes (None: in one piece), checking the memory bound."""
    framer = TailFramer(max_object_bytes)
    pieces: list[Piece] = []
    size = chunk or max(len(data), 1)
    for start in range(0, len(data), size):
        pieces += framer.feed(data[start:start + size])
        assert len(framer._buf) <= max_object_bytes + size
    pieces += framer.finish()
    return pieces


def frames(pieces: list[Piece]) -> list[Frame]:
    return [piece for piece in pieces if isinstance(piece, Frame)]


def broken(pieces: list[Piece]) -> list[Broken]:
    return [piece for piece in pieces if isinstance(piece, Broken)]


def noise(pieces: list[Piece]) -> list[Noise]:
    return [piece for piece in pieces if isinstance(piece, Noise)]


def where(piece: Piece) -> tuple[str, str | None, int, int]:
    kind = None if isinstance(piece, Frame) else piece.kind
    return type(piece).__name__, kind, piece.line, piece.offset


def line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def starts_of(data: bytes, marker: bytes) -> list[int]:
    """Offsets of every line of `data` that is exactly `marker`."""
    out, offset = [], 0
    for line in data.split(b"\n"):
        if line == marker:
            out.append(offset)
        offset += len(line) + 1
    return out


# -- layouts ------------------------------------------------------------------------------------------------------


def test_sample_capture_gives_its_12_events_at_their_lines_and_offsets() -> None:
    assert SAMPLE.startswith(b"{\n    \"wallTime\": 47,")  # wrangler >= 4.24.4 layout, byte for byte
    pieces = frame_all(SAMPLE)
    assert [frame.obj for frame in pieces] == EVENTS and len(EVENTS) == 12
    starts = starts_of(SAMPLE, b"{")
    assert [piece.offset for piece in pieces] == starts
    assert [piece.line for piece in pieces] == [line_at(SAMPLE, offset) for offset in starts]
    assert (pieces[1].line, pieces[1].offset) == (99, 3953)  # the cron event follows the 98 lines of the first
    assert not any(frame.repaired_utf8 for frame in frames(pieces))


LAYOUTS = {
    "pretty-4": b"".join(pretty(event, 4) for event in EVENTS),
    "pretty-2": b"".join(pretty(event, 2) for event in EVENTS),
    "compact-same-line": b"".join(compact(event) for event in EVENTS) + b"\n",
    "json-lines": b"".join(compact(event) + b"\n" for event in EVENTS),
    "json-lines-crlf": b"".join(compact(event) + b"\r\n" for event in EVENTS),
    "pretty-crlf": b"".join(pretty(event).replace(b"\n", b"\r\n") for event in EVENTS),
    "pretty-joined-without-newline": b"".join(pretty(event)[:-1] for event in EVENTS),
    "compact-then-pretty-same-line": b"".join(compact(e) if i % 2 else pretty(e)[:-1] for i, e in enumerate(EVENTS)),
}


@pytest.mark.parametrize("name", LAYOUTS)
@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_every_layout_gives_the_events_and_nothing_else(name: str, chunk: int | None) -> None:
    data = LAYOUTS[name]
    pieces = frame_all(data, chunk)
    assert [type(piece) for piece in pieces] == [Frame] * 12
    assert [frame.obj for frame in frames(pieces)] == EVENTS
    for piece in pieces:
        assert data[piece.offset:piece.offset + 1] == b"{"
        assert piece.line == line_at(data, piece.offset)


def test_json_lines_offsets_and_lines() -> None:
    data = LAYOUTS["json-lines"]
    pieces = frames(frame_all(data))
    sizes = [len(compact(event)) + 1 for event in EVENTS]
    assert [frame.offset for frame in pieces] == [sum(sizes[:i]) for i in range(12)]
    assert [frame.line for frame in pieces] == list(range(1, 13))


def test_compact_objects_with_no_separator_are_all_on_line_1() -> None:
    data = LAYOUTS["compact-same-line"]
    pieces = frames(frame_all(data, 7))
    assert [frame.line for frame in pieces] == [1] * 12
    assert [frame.offset for frame in pieces] == [sum(len(compact(e)) for e in EVENTS[:i]) for i in range(12)]


def test_two_space_layout_from_old_wrangler_has_the_same_events_on_other_lines() -> None:
    two, four = frames(frame_all(LAYOUTS["pretty-2"])), frames(frame_all(LAYOUTS["pretty-4"]))
    assert [f.obj for f in two] == [f.obj for f in four]
    assert [f.line for f in two] == [f.line for f in four]  # same lines, shorter ones
    assert two[1].offset < four[1].offset


# -- noise --------------------------------------------------------------------------------------------------------


def test_noise_lines_are_skipped_and_classified() -> None:
    data = (USAGE + b"\n\n" + pretty(EVENTS[0]) + b"   \n" + b" \xe2\x9b\x85\xef\xb8\x8f wrangler 4.125.0\n"
            + pretty(EVENTS[1]) + GIVE_UP + b"\n")
    pieces = frame_all(data)
    assert [where(piece)[:2] for piece in pieces] == [
        ("Noise", "text"), ("Noise", "blank"), ("Frame", None), ("Noise", "blank"), ("Broken", "truncated_object"),
        ("Frame", None), ("Noise", "json_string"),
    ]
    assert [frame.obj for frame in frames(pieces)] == EVENTS[:2]
    text, blank, _, spaces, banner, _, give_up = pieces
    assert isinstance(text, Noise) and text.text == USAGE.decode() and (text.line, text.offset) == (1, 0)
    assert isinstance(blank, Noise) and (blank.line, blank.offset) == (2, len(USAGE) + 1)
    assert isinstance(spaces, Noise) and spaces.text == ""
    # An indented line outside any object looks like the inside of a cut object: it costs itself only.
    assert isinstance(banner, Broken) and "wrangler 4.125.0" in banner.excerpt
    assert isinstance(give_up, Noise) and give_up.text == GIVE_UP.decode()
    assert give_up.line == line_at(data, give_up.offset) and data[give_up.offset:].startswith(b'"Unable')


def test_give_up_line_without_final_newline_is_still_reported() -> None:
    pieces = frame_all(pretty(EVENTS[0]) + GIVE_UP)
    assert [where(piece)[:2] for piece in pieces] == [("Frame", None), ("Noise", "json_string")]


@pytest.mark.parametrize("line", [b"[1, 2]", b"42", b"null", b"Connecting to worker factory-api..."])
def test_non_object_top_level_lines_are_text_noise(line: bytes) -> None:
    pieces = frame_all(line + b"\n" + compact(EVENTS[1]) + b"\n")
    assert [where(piece)[:2] for piece in pieces] == [("Noise", "text"), ("Frame", None)]


# -- cut objects --------------------------------------------------------------------------------------------------


def cut_pretty(event: dict[str, Any], lines: int) -> bytes:
    return b"".join(line + b"\n" for line in pretty(event).split(b"\n")[:lines])


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_object_cut_mid_stream_costs_only_itself(chunk: int | None) -> None:
    cut = cut_pretty(EVENTS[0], 20)
    data = pretty(EVENTS[2]) + cut + pretty(EVENTS[3])
    pieces = frame_all(data, chunk)
    assert [where(piece)[:2] for piece in pieces] == [("Frame", None), ("Broken", "truncated_object"),
                                                       ("Frame", None)]
    assert [frame.obj for frame in frames(pieces)] == [EVENTS[2], EVENTS[3]]
    bad = pieces[1]
    assert isinstance(bad, Broken)
    assert bad.offset == len(pretty(EVENTS[2])) and bad.line == line_at(data, bad.offset)
    assert bad.reason == "object cut off: a new object starts before it closes"
    assert bad.excerpt == cut[:EXCERPT_BYTES].decode()


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_object_cut_at_end_of_input(chunk: int | None) -> None:
    data = pretty(EVENTS[1]) + cut_pretty(EVENTS[0], 30)[:-3]
    pieces = frame_all(data, chunk)
    cut_line = 1 + pretty(EVENTS[1]).count(b"\n")
    assert [where(piece) for piece in pieces] == [("Frame", None, 1, 0),
                                                  ("Broken", "truncated_object", cut_line, len(pretty(EVENTS[1])))]
    assert pieces[1].reason == "object cut off at the end of input"  # type: ignore[union-attr]


def test_object_whose_start_is_missing_costs_only_itself() -> None:
    tail = b"\n".join(pretty(EVENTS[0]).split(b"\n")[40:])  # the last lines, ending with `}`
    data = tail + pretty(EVENTS[1]) + pretty(EVENTS[2])
    pieces = frame_all(data, 7)
    assert [where(piece)[:2] for piece in pieces] == [("Broken", "truncated_object"), ("Frame", None),
                                                       ("Frame", None)]
    assert pieces[0].offset == 0 and pieces[1].offset == len(tail)


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_compact_object_cut_mid_line(chunk: int | None) -> None:
    first, second = compact(EVENTS[0]), compact(EVENTS[1])
    # cut then newline (JSON Lines); cut then the next object on the same line; cut at the end of input
    data = first[:700] + b"\n" + second + b"\n" + first[:900] + second + first[:100]
    pieces = frame_all(data, chunk)
    assert [frame.obj for frame in frames(pieces)] == [EVENTS[1], EVENTS[1]]
    assert [where(piece) for piece in pieces] == [
        ("Broken", "truncated_object", 1, 0),
        ("Frame", None, 2, 701),
        ("Broken", "malformed_json", 3, 702 + len(second)),
        ("Frame", None, 3, 702 + len(second) + 900),
        ("Broken", "truncated_object", 3, 702 + 2 * len(second) + 900),
    ]


def test_junk_and_objects_on_one_line() -> None:
    a, b = compact(EVENTS[1]), compact({"eventTimestamp": 1, "logs": []})
    data = b"  " + a + b" , junk" + b + b"}}" + b + b"\n"
    pieces = frame_all(data)
    assert [where(piece) for piece in pieces] == [
        ("Frame", None, 1, 2),
        ("Broken", "malformed_json", 1, 2 + len(a) + 1),
        ("Frame", None, 1, 2 + len(a) + 7),
        ("Broken", "malformed_json", 1, 2 + len(a) + 7 + len(b)),
        ("Frame", None, 1, 2 + len(a) + 9 + len(b)),
    ]
    assert pieces[1].reason == "text between objects"  # type: ignore[union-attr]
    assert pieces[1].excerpt == ", junk"  # type: ignore[union-attr]


def test_pretty_object_followed_by_compact_ones_on_its_close_line() -> None:
    data = pretty(EVENTS[1])[:-1] + compact(EVENTS[1]) + b"  " + compact(EVENTS[1]) + b"\n" + pretty(EVENTS[1])
    pieces = frame_all(data, 7)
    assert [frame.obj for frame in frames(pieces)] == [EVENTS[1]] * 4
    close = pretty(EVENTS[1]).count(b"\n")
    assert [piece.line for piece in pieces] == [1, close, close, close + 1]
    assert pieces[1].offset == len(pretty(EVENTS[1])) - 1


# -- bad bytes and bad JSON ---------------------------------------------------------------------------------------


def with_bad_bytes(layout: str) -> tuple[bytes, dict[str, Any]]:
    event = json.loads(json.dumps(EVENTS[5]))
    message = event["logs"][0]["message"]
    message[0] = message[0].replace("health check ok - d1", "health check ok \ufffd\ufffd d1")
    raw = pretty(EVENTS[5]) if layout == "pretty" else compact(EVENTS[5]) + b"\n"
    bad = raw.replace(b"health check ok - d1", b"health check ok \xff\xfe d1")
    assert bad != raw
    return bad, event


@pytest.mark.parametrize("layout", ["pretty", "json-lines"])
@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_invalid_utf8_inside_a_string_is_repaired(layout: str, chunk: int | None) -> None:
    bad, repaired = with_bad_bytes(layout)
    data = pretty(EVENTS[0]) + bad + pretty(EVENTS[1])
    pieces = frame_all(data, chunk)
    assert [type(piece) for piece in pieces] == [Frame, Frame, Frame]
    assert [frame.obj for frame in frames(pieces)] == [EVENTS[0], repaired, EVENTS[1]]
    assert [frame.repaired_utf8 for frame in frames(pieces)] == [False, True, False]


def test_invalid_utf8_in_compact_objects_and_between_them() -> None:
    bad, repaired = with_bad_bytes("json-lines")
    data = bad[:-1] + b"\xff\xc3" + compact(EVENTS[1]) + b"\n"
    pieces = frame_all(data, 1)
    assert [where(piece)[:2] for piece in pieces] == [("Frame", None), ("Broken", "malformed_json"), ("Frame", None)]
    assert [frame.obj for frame in frames(pieces)] == [repaired, EVENTS[1]]
    junk = pieces[1]
    assert isinstance(junk, Broken) and junk.excerpt == "\ufffd\ufffd"
    orjson.dumps(junk.excerpt)  # no lone surrogates: it can go on the dead-letter topic


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_numbers_are_malformed_in_every_layout(value: bytes) -> None:
    obj = b'{"eventTimestamp":' + value + b',"logs":[]}'
    pretty_obj = b'{\n    "eventTimestamp": ' + value + b',\n    "logs": []\n}\n'
    data = obj + b"\n" + obj + compact(EVENTS[1]) + b"\n" + pretty_obj
    pieces = frame_all(data)
    assert [where(piece)[:2] for piece in pieces] == [("Broken", "malformed_json"), ("Broken", "malformed_json"),
                                                       ("Frame", None), ("Broken", "malformed_json")]


@pytest.mark.parametrize("value", [b"1e400", b"-1e400", b"1" + b"0" * 400])
def test_numbers_past_the_double_range_read_as_infinities_in_every_layout(value: bytes) -> None:
    # JSON allows them; JavaScript's JSON.parse reads them as infinities, and so does the framer (orjson refuses the
    # whole text), so an event with one in a field no record reads is still read. Where a record reads the number,
    # the extractor refuses an infinity as it refuses any out-of-range value.
    obj = b'{"eventTimestamp":' + value + b',"logs":[]}'
    pretty_obj = b'{\n    "eventTimestamp": ' + value + b',\n    "logs": []\n}\n'
    data = obj + b"\n" + obj + compact(EVENTS[1]) + b"\n" + pretty_obj
    pieces = frame_all(data)
    assert [where(piece)[:2] for piece in pieces] == [("Frame", None)] * 4
    sign = -1 if value.startswith(b"-") else 1
    assert [frame.obj["eventTimestamp"] for frame in frames(pieces)] == [sign * math.inf] * 2 + [
        EVENTS[1]["eventTimestamp"], sign * math.inf]


@pytest.mark.parametrize("layout", ["compact", "pretty"])
def test_lone_surrogate_escapes_are_repaired_in_every_layout(layout: str) -> None:
    # JSON.stringify writes a lone surrogate for an emoji cut in half; orjson rejects it, the framer repairs it.
    body = [b'"eventTimestamp": 1', b'"logs": []', b'"x": "ok \\ud83d \\uDC80 \\\\ud83d \\ud83d\\ude00"']
    obj = (b"{" + b", ".join(body) + b"}\n") if layout == "compact" else (
        b"{\n" + b",\n".join(b"    " + line for line in body) + b"\n}\n")
    pieces = frame_all(obj + compact(EVENTS[1]) + b"\n" + obj)
    assert [where(piece)[:2] for piece in pieces] == [("Frame", None)] * 3
    found = frames(pieces)
    assert found[0].obj["x"] == "ok \ufffd \ufffd \\ud83d \U0001f600" == found[2].obj["x"]
    assert [frame.repaired_utf8 for frame in found] == [True, False, True]


_SURROGATE_CHAR = re.compile("[\ud800-\udfff]")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(["\ud83d", "\ude00", "\udbff", "\udc00", "\\", "u", "d", "8", "a", "x",
                                         "\u00e9", "\U0001f600", '"']), max_size=30))
def test_surrogate_repair_reads_what_javascript_wrote_with_each_lone_surrogate_as_u_fffd(text: str) -> None:
    # json.dumps escapes lone surrogates as \udxxx, as JSON.stringify does; the stdlib decoder accepts them back.
    raw = json.dumps({"eventTimestamp": 1, "x": text}).encode()
    obj, repaired, error = decode_object(raw)
    expected = _SURROGATE_CHAR.sub("\ufffd", json.loads(raw)["x"])
    assert obj is not None, error
    assert obj["x"] == expected
    assert repaired == (expected != json.loads(raw)["x"])


def test_excerpts_are_bounded() -> None:
    junk = b"  " + b"x" * 5000 + b"\n"
    pieces = frame_all(b"{" + b'"k": 1, ' * 1000 + b"\n" + junk + compact(EVENTS[1]) + b"\n")
    assert [where(piece)[:2] for piece in pieces] == [("Broken", "truncated_object"), ("Broken", "truncated_object"),
                                                       ("Frame", None)]
    for piece in broken(pieces):
        assert len(piece.excerpt.encode()) <= EXCERPT_BYTES


# -- oversized objects and memory ---------------------------------------------------------------------------------

SMALL_LIMIT = 2048


def oversized_stream() -> bytes:
    big = {"wallTime": 1, "logs": [{"message": ["x" * 100_000], "level": "log", "timestamp": 1}], "event": None}
    return (pretty(EVENTS[1]) + pretty(big) + compact(EVENTS[1]) + b"\n" + compact(big) + b"\n"
            + compact(EVENTS[1]) + compact(big) + compact(EVENTS[1]) + b"\n" + pretty(EVENTS[0]) + pretty(EVENTS[1]))


@pytest.mark.parametrize("chunk", [1, 7, 1000, 4096, None])
def test_oversized_objects_are_rejected_and_memory_stays_bounded(chunk: int | None) -> None:
    data = oversized_stream()
    pieces = frame_all(data, chunk, SMALL_LIMIT)  # asserts len(_buf) <= limit + chunk after every feed
    assert [where(piece)[:2] for piece in pieces] == [
        ("Frame", None),
        ("Broken", "oversized_object"),
        ("Frame", None),
        ("Broken", "oversized_object"),
        ("Frame", None),
        ("Broken", "oversized_object"),  # the rest of a compact line after an oversized object is skipped
        ("Broken", "oversized_object"),  # a 4 KB pretty event
        ("Frame", None),
    ]
    assert all(frame.obj == EVENTS[1] for frame in frames(pieces))
    for piece in broken(pieces):
        assert piece.reason == f"object larger than {SMALL_LIMIT} bytes"
        assert data[piece.offset:piece.offset + 1] == b"{" and piece.line == line_at(data, piece.offset)


def test_buffer_never_holds_more_than_limit_plus_chunk_while_skipping() -> None:
    framer = TailFramer(SMALL_LIMIT)
    body = b'    "x": "' + b"y" * 500 + b'",\n'
    framer.feed(b"{\n")
    sizes = []
    for _ in range(400):  # 200 KB of one pretty object
        assert framer.feed(body) in ([], [Broken("oversized_object", f"object larger than {SMALL_LIMIT} bytes",
                                                 (b"{\n" + body * 4)[:EXCERPT_BYTES].decode(), 1, 0)])
        sizes.append(len(framer._buf))
    assert max(sizes) <= SMALL_LIMIT + len(body)
    assert max(sizes[10:]) <= 1  # discarding: only a possible `\n` of `\n}` is kept
    tail = framer.feed(b'    "z": 1\n}\n') + framer.feed(compact(EVENTS[1]) + b"\n") + framer.finish()
    assert [where(piece)[:2] for piece in tail] == [("Frame", None)]


def test_long_noise_line_is_one_piece_whatever_the_chunking() -> None:
    data = b"x" * 10_000 + b"\n" + b" " * 3000 + b"\n" + compact(EVENTS[1]) + b"\n"
    for chunk in (None, 1, 100):
        pieces = frame_all(data, chunk, SMALL_LIMIT)
        assert [where(piece) for piece in pieces] == [("Noise", "text", 1, 0), ("Noise", "blank", 2, 10_001),
                                                      ("Frame", None, 3, 13_002)]


def test_max_object_bytes_has_a_floor() -> None:
    with pytest.raises(ValueError, match="at least 1024"):
        TailFramer(1023)


# -- chunking changes nothing -------------------------------------------------------------------------------------


def mixed_stream() -> bytes:
    bad, _ = with_bad_bytes("pretty")
    return b"".join([
        USAGE + b"\n", pretty(EVENTS[0]), b"\n", pretty(EVENTS[1], 2), cut_pretty(EVENTS[2], 15),
        compact(EVENTS[3]) + compact(EVENTS[4]) + b"\n", compact(EVENTS[5])[:300] + b"\n", bad,
        b"    orphan line\n}\n", compact(EVENTS[6]) + b"\r\n", pretty(EVENTS[7])[:-1] + compact(EVENTS[8]) + b"\n",
        pretty(EVENTS[10]), compact(EVENTS[9]) + b'junk{"a":"x' + compact(EVENTS[9]) + b"\n",
        b'junk{"a":' + compact(EVENTS[9]) + b"\n", GIVE_UP + b"\n", cut_pretty(EVENTS[11], 9),
    ])


def piece_key(piece: Piece) -> tuple[Any, ...]:
    if isinstance(piece, Frame):
        return ("Frame", piece.line, piece.offset, piece.repaired_utf8, orjson.dumps(piece.obj))
    if isinstance(piece, Noise):
        return ("Noise", piece.kind, piece.line, piece.offset, piece.text)
    return ("Broken", piece.kind, piece.line, piece.offset, piece.reason, piece.excerpt)


def test_mixed_stream_pieces() -> None:
    pieces = frame_all(mixed_stream())
    assert [where(piece)[:2] for piece in pieces] == [
        ("Noise", "text"), ("Frame", None), ("Noise", "blank"), ("Frame", None), ("Broken", "truncated_object"),
        ("Frame", None), ("Frame", None), ("Broken", "truncated_object"), ("Frame", None),
        ("Broken", "truncated_object"), ("Frame", None), ("Frame", None), ("Frame", None), ("Frame", None),
        ("Frame", None), ("Broken", "malformed_json"), ("Broken", "malformed_json"), ("Frame", None),
        ("Noise", "text"), ("Noise", "json_string"), ("Broken", "truncated_object"),
    ]
    assert [frame.obj["eventTimestamp"] for frame in frames(pieces)] == [
        EVENTS[i]["eventTimestamp"] for i in (0, 1, 3, 4, 5, 6, 7, 8, 10, 9, 9)
    ]
    assert broken(pieces)[-3].reason == "text between objects" and broken(pieces)[-3].excerpt == "junk"
    cut = broken(pieces)[-2]  # `{"a":"x` then the next object: its string runs into that object, which survives
    assert cut.reason == "Expecting ',' delimiter" and cut.excerpt == '{"a":"x'
    orphan = broken(pieces)[2]
    assert orphan.reason == "object start missing: object lines outside any object"
    assert orphan.excerpt == "    orphan line\n}\n"


@pytest.mark.parametrize("limit", [DEFAULT_MAX_OBJECT_BYTES, SMALL_LIMIT])
@pytest.mark.parametrize("chunk", [1, 7, 64, 4096])
def test_any_chunk_size_gives_identical_pieces(chunk: int, limit: int) -> None:
    # (with the default limit, the 100 KB objects of oversized_stream would be slow to feed a byte at a time)
    data = mixed_stream() + (oversized_stream() if limit == SMALL_LIMIT else b"")
    whole = [piece_key(piece) for piece in frame_all(data, None, limit)]
    assert [piece_key(piece) for piece in frame_all(data, chunk, limit)] == whole
    assert len(whole) == (25 if limit == SMALL_LIMIT else 21)
    assert any(key[:2] == ("Broken", "oversized_object") for key in whole) == (limit == SMALL_LIMIT)


# -- properties ---------------------------------------------------------------------------------------------------

STYLES = ("pretty-4", "pretty-2", "compact")


def render(event: dict[str, Any], style: str, separator: bytes) -> bytes:
    if style == "compact":
        return compact(event) + separator
    return pretty(event, 4 if style == "pretty-4" else 2)


text_lines = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\n"), max_size=80).map(
    lambda text: text.encode())
partial_objects = st.tuples(st.integers(0, 11), st.sampled_from(STYLES), st.floats(0, 1)).map(
    lambda t: render(EVENTS[t[0]], t[1], b"")[: int(t[2] * len(render(EVENTS[t[0]], t[1], b"")))])
junk_bytes = st.one_of(
    text_lines,
    st.binary(max_size=60),
    st.binary(max_size=60).map(lambda raw: b"{" + raw),
    partial_objects,
    st.sampled_from([b"{", b"}", b"  {", b"]", b"{\n    \"a\": 1,", b"}{", b'{"a":', b'"', b"-Infinit", b"\\u12",
                     GIVE_UP, USAGE, b"", b"    ", b"\r"]),
)
items = st.lists(
    st.one_of(
        st.tuples(st.just("event"), st.integers(0, 11), st.sampled_from(STYLES), st.sampled_from([b"\n", b""])),
        st.tuples(st.just("junk"), junk_bytes, st.booleans()),
    ),
    max_size=14,
)


def build(spec: list[tuple[Any, ...]]) -> tuple[bytes, list[dict[str, Any]]]:
    """The stream, and the events that must come out of it.

    The guarantee: junk costs at most the rest of its own line, plus the object it cuts. An event that starts on
    a line where unterminated junk came first (junk with no `\n` after it, and compact events joined to it) may
    be lost: at column 0 that line is text noise or an indented line, and a pretty object whose `{` does not start
    its line cannot be told from a nested one. Every other event comes out, in order.
    """
    parts: list[bytes] = []
    expected: list[dict[str, Any]] = []
    dirty = False  # the current line began with (or holds) unterminated junk
    for item in spec:
        if item[0] == "event":
            _, index, style, separator = item
            part = render(EVENTS[index], style, separator)
            if not dirty:
                expected.append(EVENTS[index])
        else:
            _, junk, terminated = item
            part = junk + b"\n" if terminated else junk
        parts.append(part)
        if part.endswith(b"\n"):
            dirty = False
        elif item[0] == "junk" and part:
            dirty = True  # even blanks: ` {` is an indented line, the inside of an object
    return b"".join(parts), expected


def is_subsequence(wanted: list[dict[str, Any]], got: list[dict[str, Any]]) -> bool:
    it = iter(got)
    return all(any(obj == want for obj in it) for want in wanted)


@PROPERTY
@given(items)
def test_junk_between_objects_never_loses_the_objects_after_it(spec: list[tuple[Any, ...]]) -> None:
    data, expected = build(spec)
    pieces = frame_all(data)
    assert is_subsequence(expected, [frame.obj for frame in frames(pieces)])
    offsets = [piece.offset for piece in pieces]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    for piece in pieces:
        assert piece.line == line_at(data, piece.offset)
        if isinstance(piece, Frame):
            assert data[piece.offset:piece.offset + 1] in (b"{", b" ", b"\t", b"\r")


@PROPERTY
@given(items, st.lists(st.integers(1, 3000), min_size=1, max_size=8), st.sampled_from([1024, 2048, 1 << 20]))
def test_chunking_never_changes_the_pieces(spec: list[tuple[Any, ...]], sizes: list[int], limit: int) -> None:
    data, _ = build(spec)
    whole = [piece_key(piece) for piece in frame_all(data, None, limit)]
    framer = TailFramer(limit)
    pieces: list[Piece] = []
    start = 0
    for index in range(len(data)):
        if start >= len(data):
            break
        size = sizes[index % len(sizes)]
        pieces += framer.feed(data[start:start + size])
        assert len(framer._buf) <= limit + size
        start += size
    pieces += framer.finish()
    assert [piece_key(piece) for piece in pieces] == whole


@PROPERTY
@given(st.binary(max_size=400), st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_and_the_next_line_object_survives(before: bytes, after: bytes) -> None:
    data = before + b"\n" + compact(EVENTS[1]) + b"\n" + after
    pieces = frame_all(data, 3, 1024)
    assert EVENTS[1] in [frame.obj for frame in frames(pieces)]
    for piece in pieces:
        assert piece.line == line_at(data, piece.offset)
        if isinstance(piece, Broken | Noise):
            orjson.dumps(piece.excerpt if isinstance(piece, Broken) else piece.text)


@pytest.mark.parametrize("chunk", [None, 1, 5, 64])
def test_a_column_0_brace_inside_an_object_that_parses_is_part_of_it(chunk: int | None) -> None:
    """The text up to the first `}` line parses: one object, even with a nested value at column 0; when it does not
    parse, the `{` line inside starts a new object (the first was cut off) — whatever the chunking."""
    nested = b'{\n    "a":\n{"b": 1},\n    "c": [\n{"d": 2}\n    ]\n}\n'
    cut = b'{\n    "a": [1,\n' + b'{\n    "e": 3\n}\n'
    pieces = frame_all(nested + cut, chunk)
    assert [where(piece)[:3] for piece in pieces] == [("Frame", None, 1), ("Broken", "truncated_object", 8),
                                                      ("Frame", None, 10)]
    assert [frame.obj for frame in frames(pieces)] == [{"a": {"b": 1}, "c": [{"d": 2}]}, {"e": 3}]


@pytest.mark.parametrize("chunk", [None, 65_536, 300_000])
def test_objects_larger_than_a_scan_frame_as_small_ones_do(chunk: int | None) -> None:
    """An object spanning many slices (its buffer past `SCAN_BYTES`, where the framer searches each close instead
    of scanning the buffer's newlines) frames as a small one: the same pieces, lines and offsets, and with the fast
    path the same records."""
    from pipeline.extract import Extractor
    from pipeline.fast_record import record_of_json
    from pipeline.pieces import SCAN_BYTES, Extracted

    big = dict(EVENTS[0], padding=["x" * 1000] * (SCAN_BYTES // 900))  # ~1.1 MiB over many lines
    data = pretty(EVENTS[0]) + pretty(big) + b"noise\n" + pretty(EVENTS[2]) + b"{\n    oops\n}\n" + pretty(EVENTS[0])
    assert len(pretty(big)) > SCAN_BYTES
    pieces = frame_all(data, chunk)
    assert [where(piece) for piece in pieces] == [where(piece) for piece in frame_all(data, 4096)]
    assert [piece.line for piece in pieces] == [line_at(data, piece.offset) for piece in pieces]
    assert [frame.obj for frame in frames(pieces)] == [EVENTS[0], big, EVENTS[2], EVENTS[0]]
    routes = Extractor().routes
    framer = TailFramer(fast=lambda text, ascii_text: record_of_json(routes, text, ascii_text))
    fast = [piece for start in range(0, len(data), chunk or len(data))
            for piece in framer.feed(data[start:start + (chunk or len(data))])] + framer.finish()
    records = [record for piece in fast if isinstance(piece, Extracted) for record in piece.records]
    assert len(records) == 4 and [where(piece) for piece in fast if not isinstance(piece, Extracted)] == [
        where(piece) for piece in pieces if not isinstance(piece, Frame)]
