"""The rule unit-test core: fixtures expand in arrival order, and late arrivals are decided as replay decides."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.rules.rule_tests import expand
from pipeline.timestamps import iso_to_ms
from schemas.rule_tests import RuleTestCase, RuleTestFile, offset_ms

START = iso_to_ms("2026-01-06T12:00:00Z")


def case(*inputs: dict) -> RuleTestCase:
    return RuleTestCase.model_validate({"name": "c", "input": list(inputs), "expect": []})


def test_series_and_records_expand_in_arrival_order() -> None:
    records = expand(case({"series": {"endpoint": "/a", "every": "20s", "count": 3, "from": "1m"}},
                          {"record": {"endpoint": "/b", "at": "1m10s", "delay": "25s", "status": 500}},
                          {"record": {"endpoint": "/c", "at": "0s"}}), START)
    # event times: /a at 60, 80, 100 s; /b at 70 s arriving at 95 s (after /a's 80 s, before its 100 s); /c at 0
    assert [(r["endpoint"], (r["event_time_ms"] - START) // 1000) for r in records] == [
        ("/c", 0), ("/a", 60), ("/a", 80), ("/b", 70), ("/a", 100)]
    assert records[3]["status"] == 500 and records[0]["status"] == 200 and records[0]["service"] == "factory-api"


def test_offsets_and_validation() -> None:
    assert offset_ms("5m30s") == 330_000 and offset_ms("1500ms") == 1500 and offset_ms("1h") == 3_600_000
    with pytest.raises(ValueError, match="not a duration"):
        offset_ms("5 minutes")
    with pytest.raises(ValidationError, match="give one of"):
        case({"series": {"endpoint": "/a", "every": "1s", "count": 1}, "record": {"endpoint": "/a", "at": "0s"}})
    with pytest.raises(ValidationError, match="not an offset"):
        RuleTestFile.model_validate({"tests": [{"name": "c", "input": [{"record": {"endpoint": "/a", "at": "0s"}}],
                                                "expect": [{"rule": "r", "change": "firing", "at": "soon"}]}]})
