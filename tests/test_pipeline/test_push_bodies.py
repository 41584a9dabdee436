"""Pushed bodies: decompression within a limit, decoding, request keys and their bound."""

from __future__ import annotations

import gzip

import pytest

from pipeline.push_bodies import BodyError, RequestKeys, decompressed, request_key, trace_items


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


def test_tail_bodies_must_be_arrays() -> None:
    assert trace_items("tail", b'[{"a": 1}, 2]') == [{"a": 1}, 2]
    for body, kind in ((b'{"a": 1}', "not_an_array"), (b"[1,", "malformed_json")):
        with pytest.raises(BodyError) as error:
            trace_items("tail", body)
        assert (error.value.status, error.value.kind) == (400, kind)


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
