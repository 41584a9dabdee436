"""Silence matchers (Alertmanager-style) and the silence record schema."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.rules.silences import MatcherError, SilenceSet, parse_matcher
from schemas.silences import Silence

LABELS = {"rule": "factory-404-spike", "service": "gateway", "endpoint": "/api/x/:id", "severity": "MEDIUM"}
T = 1_767_700_800_000  # 2026-01-06T12:00:00Z


def silence(*matchers: str, starts: str = "2026-01-06T12:00:00Z", ends: str = "2026-01-06T14:00:00Z") -> dict:
    return {"id": "s", "matchers": [parse_matcher(m) for m in matchers], "starts_at": starts, "ends_at": ends}


@pytest.mark.parametrize(("matchers", "hit"), [
    (["rule=factory-404-spike"], True),
    (["rule=factory-404-spike", "endpoint=/api/x/:id"], True),
    (["rule=factory-404-spike", "endpoint=/api/y"], False),  # all must hold
    (["endpoint=~/api/.*"], True),
    (["endpoint=~/api"], False),  # regexes are anchored: the whole value must match
    (["endpoint!~/health.*", "severity!=CRITICAL"], True),
    (["severity=~HIGH|CRITICAL"], False),
    (["team="], True),  # a label the alert does not have is the empty string
    (["team!="], False),
])
def test_matchers(matchers: list[str], hit: bool) -> None:
    assert (SilenceSet([silence(*matchers)]).matching(LABELS, T) == ["s"]) is hit


def test_the_time_range_is_half_open_in_event_time() -> None:
    silences = SilenceSet([silence("rule=factory-404-spike")])
    assert silences.matching(LABELS, T - 1) == []
    assert silences.matching(LABELS, T) == ["s"]
    assert silences.matching(LABELS, T + 2 * 3_600_000 - 1) == ["s"]
    assert silences.matching(LABELS, T + 2 * 3_600_000) == []
    silences.reset([])
    assert silences.matching(LABELS, T) == [] and len(silences) == 0


def test_parse_matcher_and_its_errors() -> None:
    assert parse_matcher("endpoint=~/api/a=b") == {"name": "endpoint", "op": "=~", "value": "/api/a=b"}
    assert parse_matcher("a!=b") == {"name": "a", "op": "!=", "value": "b"}
    with pytest.raises(MatcherError, match="not a matcher"):
        parse_matcher("rule")
    with pytest.raises(MatcherError, match="not a label name"):
        parse_matcher("my-label=x")
    with pytest.raises(MatcherError, match="bad regex"):
        parse_matcher("endpoint=~(")


def test_the_silence_schema_rejects_bad_records() -> None:
    good = {**silence("rule=x"), "created_by": "ops", "comment": "c", "created_at": "2026-01-06T11:00:00Z"}
    Silence.model_validate(good)
    with pytest.raises(ValidationError, match="ends_at is before starts_at"):
        Silence.model_validate({**good, "ends_at": "2026-01-06T11:00:00Z"})
    with pytest.raises(ValidationError, match="bad regex"):
        Silence.model_validate({**good, "matchers": [{"name": "a", "op": "=~", "value": "("}]})
    with pytest.raises(ValidationError, match="time zone"):
        Silence.model_validate({**good, "starts_at": "2026-01-06T12:00:00"})
    with pytest.raises(ValidationError):
        Silence.model_validate({**good, "matchers": []})
