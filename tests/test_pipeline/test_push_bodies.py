"""Pushed bodies: decompression within a limit, decoding, request keys and their bound."""

from __future__ import annotations

import gzip

import pytest

from pipeline.parsing import LogParser
from pipeline.push_bodies import BodyError, RequestKeys, decompressed, feed_body, raw_items_of_array, request_key


def test_gzip_is_inflated_by_header_or_magic_and_never_past_the_limit() -> None:
    body = b"[" + b"{}," * 100 + b"{}]"
    packed = gzip.compress(body)
    assert decompressed(packed, "gzip", 1024) == body
    assert decompressed(packed, "", 1024) == body  # Logpush's .gz files
    assert decompressed(body, "identity", 1024) == body
    with pytest.raises(BodyError) as large:
        decompressed(gzip.compress(b" " * 10_000_000), "gzip", 1024)
    assert large.value.status == 413
    with pytest.raises(BodyError) as cut:
        decompressed(packed[:-12], "gzip", 1024)
    assert (cut.value.status, cut.value.kind) == (400, "malformed_gzip")
    with pytest.raises(BodyError) as other:
        decompressed(body, "br", 1024)
    assert other.value.status == 415


def test_tail_bodies_must_be_arrays_and_a_bad_item_costs_only_itself() -> None:
    assert [bytes(raw) for raw in raw_items_of_array(b'[{"a": 1}, 2]')] == [b'{"a": 1}', b"2"]
    for body, kind in ((b'{"a": 1}', "not_an_array"), (b"[1,", "malformed_json"), (b"", "malformed_json")):
        with pytest.raises(BodyError) as error:
            feed_body(LogParser("x"), "tail", body)
        assert (error.value.status, error.value.kind) == (400, kind)
    with pytest.raises(BodyError) as deep:  # nesting past the decoders' limits: the whole body
        feed_body(LogParser("x"), "tail", b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]")
    assert (deep.value.status, deep.value.kind) == (400, "malformed_json")
    # 1e400 passes the array split (msgspec skips it) and its own item reads it as an infinity, as a capture's
    # framer does: that item is an object, but not an event.
    parser = LogParser("x")
    out = feed_body(parser, "tail", b'[{"a": 1e400}, 3, {"outcome": "ok"}]')
    assert [(letter["kind"], letter["offset"]) for letter in out.dead_letters] == [
        ("not_an_event", 0), ("not_an_event", 1)]
    assert parser.stats.non_request == 1
    # A lone surrogate escape (JavaScript's cut emoji) and invalid UTF-8 are repaired, as in a capture.
    repaired = LogParser("y")
    feed_body(repaired, "tail", b'[{"outcome": "ok", "logs": [{"message": ["\\ud83d \xff"]}], "event": null}]')
    assert (repaired.stats.events, repaired.stats.non_request, repaired.stats.rejected) == (1, 1, 0)


def test_request_keys_hold_at_most_their_capacity() -> None:
    keys = RequestKeys(capacity=1_000)
    for number in range(10_000):
        keys.add(request_key("tail", str(number).encode()))
    assert len(keys) == 1_000
    assert keys.seen(request_key("tail", b"9999"))
    assert not keys.seen(request_key("tail", b"8999"))  # dropped: the oldest go first
    assert not keys.seen(request_key("logpush", b"9999"))  # a key is per route
    keys.seen(request_key("tail", b"9000"))  # seen again: now the most recent
    keys.add(request_key("tail", b"new"))
    assert keys.seen(request_key("tail", b"9000")) and not keys.seen(request_key("tail", b"9001"))
    assert len(RequestKeys(capacity=0)) == 0
