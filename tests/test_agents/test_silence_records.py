"""Silence records as the worker and `replay --silences` read them: one that is not a valid silence — above all a
regex RE2 does not accept — costs only itself: skipped, logged with its reason, counted; the rest apply."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from agents.alert_silences import SilenceFeed, load_silence_file

LABELS = {"rule": "r", "service": "s", "endpoint": "/api/x", "severity": "HIGH"}
T = 1_767_700_800_000  # 2026-01-06T12:00:00Z


def record(sid: str, value: str) -> dict:
    return {"v": 1, "id": sid, "matchers": [{"name": "endpoint", "op": "=~", "value": value}],
            "starts_at": "2026-01-06T00:00:00Z", "ends_at": "2026-01-07T00:00:00Z", "created_by": "ops",
            "comment": "c", "created_at": "2026-01-06T00:00:00Z", "expired_at": None}


def test_the_feed_skips_and_counts_a_record_re2_refuses(caplog: pytest.LogCaptureFixture) -> None:
    feed = SilenceFeed("127.0.0.1:1", "tailwatch.silences")
    with caplog.at_level(logging.WARNING, logger="tailwatch.silences"):
        feed._apply(b"good", orjson.dumps(record("good", "/api/.*")))
        feed._apply(b"bad", orjson.dumps(record("bad", "(?=/api)/api/x")))
        feed._apply(b"junk", b"{not json")
        # a valid silence replaced by an invalid version keeps the valid one
        feed._apply(b"good", orjson.dumps(record("good", r"(/api)\1")))
    assert feed.invalid_records == 3
    assert feed.silences.matching(LABELS, T) == ["good"] and len(feed.silences) == 1
    reasons = [r.__dict__["fields"]["error"] for r in caplog.records
               if r.getMessage() == "invalid silence record skipped"]
    assert len(reasons) == 3 and "invalid perl operator" in reasons[0] and "invalid escape sequence" in reasons[2]
    feed._apply(b"good", None)  # a tombstone still removes it
    assert len(feed.silences) == 0


def test_a_silence_file_skips_an_invalid_entry_and_keeps_the_rest(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "silences.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in (record("a", "/api/.*"), record("b", r"(a)\1"),
                                                           record("c", "/x"))))
    with caplog.at_level(logging.WARNING, logger="tailwatch.silences"):
        silences = load_silence_file(path)
    assert [s["id"] for s in silences] == ["a", "c"]
    skipped = [r.__dict__["fields"] for r in caplog.records if r.getMessage() == "invalid silence skipped"]
    assert len(skipped) == 1 and skipped[0]["entry"] == 2 and skipped[0]["id"] == "b"
    assert "invalid escape sequence" in skipped[0]["error"]
